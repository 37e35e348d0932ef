//! Layer 3: the AI content filter of profiles.
//!
//! A profile's content is a stranger's text, so it is never put in front of a tool-holding turn: the
//! backend's `judge` asks the owner's AI a strict yes/no question with no tools, and only the answer
//! is kept. Rulings are cached per author and content (a re-announce with the same content is not
//! judged again), at most [`JUDGING_AT_ONCE`] run at once and at most [`MAX_WAITING`] wait; a flood
//! beyond that stays unjudged (hidden while the filter runs) until its next announce finds room. Each
//! ruling is audited.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use wopr_proto::discovery::{Profile, Verdict};
use wopr_store::Decision;

use super::settings::FilterMode;
use crate::Judgement;
use crate::inner::{Audited, Inner, lock};

/// Profiles judged at once.
pub const JUDGING_AT_ONCE: usize = 2;
/// Profiles waiting to be judged at most.
pub const MAX_WAITING: usize = 256;
/// Rulings remembered (author and content); the cache starts over when full.
const CACHE_SIZE: usize = 4096;

const UNKNOWN: u8 = 0;
const AVAILABLE: u8 = 1;
const UNAVAILABLE: u8 = 2;

/// The filter's mode, whether a judge answered, its cache and its slots.
#[derive(Debug)]
pub(crate) struct Filter {
    mode: Mutex<FilterMode>,
    judge: AtomicU8,
    cache: Mutex<HashMap<[u8; 32], Verdict>>,
    slots: Arc<Semaphore>,
    waiting: Arc<std::sync::atomic::AtomicUsize>,
}

impl Filter {
    pub(crate) fn new(mode: FilterMode) -> Filter {
        Filter {
            mode: Mutex::new(mode),
            judge: AtomicU8::new(UNKNOWN),
            cache: Mutex::default(),
            slots: Arc::new(Semaphore::new(JUDGING_AT_ONCE)),
            waiting: Arc::default(),
        }
    }

    pub(crate) fn set_mode(&self, mode: FilterMode) {
        *lock(&self.mode) = mode;
        self.judge.store(UNKNOWN, Ordering::Relaxed);
        lock(&self.cache).clear();
    }

    /// Whether the filter is running: on, or auto with a capable judge found.
    pub(crate) fn active(&self) -> bool {
        match *lock(&self.mode) {
            FilterMode::Off => false,
            FilterMode::On | FilterMode::Auto => self.judge.load(Ordering::Relaxed) != UNAVAILABLE,
        }
    }

    /// A human summary for `discover status`.
    pub(crate) fn describe(&self) -> String {
        let mode = *lock(&self.mode);
        let judge = match self.judge.load(Ordering::Relaxed) {
            AVAILABLE => "judging",
            UNAVAILABLE => "no capable AI configured, so off",
            _ => "no profile judged yet",
        };
        match mode {
            FilterMode::Off => "off".into(),
            m => format!("{m} ({judge})"),
        }
    }

    /// Whether a profile with this verdict is listed.
    pub(crate) fn shows(&self, verdict: &Verdict) -> bool {
        match verdict {
            Verdict::Filtered(_) => false,
            Verdict::Allowed(_) => true,
            Verdict::Unjudged => !self.active(),
        }
    }

    /// Whether a profile with this verdict should be judged now.
    pub(crate) fn wants(&self, verdict: &Verdict) -> bool {
        *verdict == Verdict::Unjudged && self.active()
    }

    fn capable_only(&self) -> bool {
        *lock(&self.mode) == FilterMode::Auto
    }
}

fn cache_key(profile: &Profile) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(profile.author.as_bytes());
    h.update(profile.content.as_bytes());
    h.finalize().into()
}

/// Judges `profile` (seen in `topic`) in the background, or applies the cached ruling.
pub(crate) fn judge(inner: Arc<Inner>, topic: String, profile: Profile, is_new: bool) {
    let filter = &inner.discovery.filter;
    let key = cache_key(&profile);
    if let Some(verdict) = lock(&filter.cache).get(&key).cloned() {
        inner.apply_verdict(&topic, &profile, verdict, is_new);
        return;
    }
    if filter.waiting.fetch_add(1, Ordering::AcqRel) >= MAX_WAITING {
        filter.waiting.fetch_sub(1, Ordering::AcqRel);
        return;
    }
    let (slots, waiting) = (filter.slots.clone(), filter.waiting.clone());
    tokio::spawn(async move {
        let slot = slots.acquire_owned().await;
        waiting.fetch_sub(1, Ordering::AcqRel);
        let Ok(_slot) = slot else { return };
        let filter = &inner.discovery.filter;
        let question = Judgement::Profile { topic: &topic, content: &profile.content };
        match inner.backend.judge(question, filter.capable_only()).await {
            Ok(Some((yes, reason))) => {
                filter.judge.store(AVAILABLE, Ordering::Relaxed);
                let verdict =
                    if yes { Verdict::Allowed(reason.clone()) } else { Verdict::Filtered(reason.clone()) };
                {
                    let mut cache = lock(&filter.cache);
                    if cache.len() >= CACHE_SIZE {
                        cache.clear();
                    }
                    cache.insert(key, verdict.clone());
                }
                let what = Audited { action: "profile-filter", ..Audited::default() };
                let decision = if yes { Decision::Accepted } else { Decision::Refused };
                inner.record_soon(&profile.author, &what, decision, Some(format!("topic {topic}: {reason}")));
                inner.apply_verdict(&topic, &profile, verdict, is_new);
            }
            Ok(None) => {
                filter.judge.store(UNAVAILABLE, Ordering::Relaxed);
                // Now shown unjudged: tell watchers it is there.
                inner.apply_verdict(&topic, &profile, Verdict::Unjudged, is_new);
            }
            Err(e) => tracing::warn!(%e, topic, "the content filter could not judge a profile"),
        }
    });
}
