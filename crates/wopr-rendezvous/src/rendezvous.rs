//! The I/O shell: a mainline DHT node that writes and reads a topic's values.
//!
//! `mainline` runs its node on its own thread and answers the async API over channels, so nothing here
//! blocks a tokio worker except start-up (resolving the bootstrap hosts and binding the socket), which
//! runs on the blocking pool.
//!
//! Writing is read, merge, write, confirm: a member reads every version of its bucket that the closest
//! nodes hold (they can disagree while writers race), merges its own fresh entry into the union
//! ([`crate::value::merge`]), writes it with a higher `seq` and BEP44's `cas` (so a racing write is
//! refused rather than lost), then reads again to see its entry stored. A lost race is retried after a
//! short random pause.

use std::collections::HashMap;
use std::net::{SocketAddr, SocketAddrV4, ToSocketAddrs};
use std::time::Duration;

use futures::StreamExt;
use mainline::async_dht::AsyncDht;
use mainline::errors::PutMutableError;
use mainline::{Dht, MutableItem};
use wopr_identity::{Identity, random_bytes};

use crate::value::{self, NONCE_LEN};
use crate::{BUCKETS, Member, MemberEntry, RendezvousError, SlotKeys, TopicKeys, slot_of};

/// Write attempts before [`Rendezvous::announce`] gives up on a contended value.
pub const MAX_ATTEMPTS: usize = 5;

/// Most versions of one value read from the DHT (each closest node may hold a different one).
pub const MAX_VERSIONS: usize = 16;

/// Where an announce landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announced {
    /// The slot written (minutes since the Unix epoch).
    pub slot: u64,
    /// The bucket written.
    pub bucket: usize,
    /// Entries in the value written, ours included.
    pub entries: usize,
    /// Write attempts it took (1 unless other members raced us).
    pub attempts: usize,
}

/// What a lookup found, with counts of what it refused (for the audit log).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LookupReport {
    /// Members whose entries verified, one per key, newest first.
    pub members: Vec<Member>,
    /// Distinct values read.
    pub values: usize,
    /// Values that did not decrypt or decode (not written by anyone who knows the name, or damaged).
    pub refused_values: usize,
    /// Entries refused: a bad member signature, stale, or from the future.
    pub refused_entries: usize,
}

/// Everything read from one bucket.
#[derive(Default)]
struct BucketRead {
    /// The highest `seq` any node holds, readable or not (a write must go above it).
    max_seq: Option<i64>,
    /// The entries of every readable version.
    entries: Vec<MemberEntry>,
    values: usize,
    refused_values: usize,
}

/// A node on the mainline DHT that announces and finds topic members.
#[derive(Clone)]
pub struct Rendezvous {
    dht: AsyncDht,
}

impl std::fmt::Debug for Rendezvous {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rendezvous")
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Resolves `host:port` entries to IPv4 socket addresses (the mainline DHT speaks IPv4), refusing the
/// first one that does not resolve rather than running with fewer nodes than configured.
fn resolve_bootstrap(nodes: &[String]) -> Result<Vec<SocketAddrV4>, RendezvousError> {
    if nodes.is_empty() {
        return Err(RendezvousError::NoBootstrap);
    }
    let mut out = Vec::new();
    for node in nodes {
        let bad = |reason: String| RendezvousError::BadBootstrap { node: node.clone(), reason };
        let addrs = node.to_socket_addrs().map_err(|e| bad(e.to_string()))?;
        let before = out.len();
        out.extend(addrs.filter_map(|a| match a {
            SocketAddr::V4(v4) => Some(v4),
            SocketAddr::V6(_) => None,
        }));
        if out.len() == before {
            return Err(bad("no IPv4 address".into()));
        }
    }
    Ok(out)
}

impl Rendezvous {
    /// Joins the DHT through `bootstrap` (`"host:port"` entries; `None` for the public DHT's default
    /// nodes) and waits until at least one node answered.
    pub async fn start(bootstrap: Option<Vec<String>>) -> Result<Rendezvous, RendezvousError> {
        let shown = bootstrap.as_ref().map_or_else(|| "public defaults".to_string(), |b| b.join(", "));
        let dht = tokio::task::spawn_blocking(move || {
            let mut builder = Dht::builder();
            if let Some(nodes) = bootstrap {
                builder.bootstrap(&resolve_bootstrap(&nodes)?);
            }
            builder.build().map_err(RendezvousError::Socket)
        })
        .await
        .map_err(|e| RendezvousError::Task(e.to_string()))??
        .as_async();
        if !dht.bootstrapped().await {
            return Err(RendezvousError::Unreachable { bootstrap: shown });
        }
        Ok(Rendezvous { dht })
    }

    /// Announces `me` in `topic` now, reachable at `hints`. Call it every
    /// [`crate::REFRESH_INTERVAL_MS`] to stay visible.
    pub async fn announce(
        &self,
        topic: &str,
        me: &Identity,
        hints: &[String],
    ) -> Result<Announced, RendezvousError> {
        self.announce_at(topic, me, hints, now_ms()).await
    }

    /// Announces `me` in `topic` as of `now_ms` (milliseconds since the Unix epoch), in that time's slot.
    pub async fn announce_at(
        &self,
        topic: &str,
        me: &Identity,
        hints: &[String],
        now_ms: u64,
    ) -> Result<Announced, RendezvousError> {
        let topic_keys = TopicKeys::derive(topic)?;
        let keys = topic_keys.slot(slot_of(now_ms));
        let ours = MemberEntry::sign(me, &topic_keys, hints, now_ms)?;
        for attempt in 1..=MAX_ATTEMPTS {
            // The last attempt writes without compare-and-swap: if most closest nodes missed an earlier
            // write they refuse every CAS against the newest version, and the value would stay stuck.
            let use_cas = attempt < MAX_ATTEMPTS;
            if let Some((bucket, entries)) =
                self.try_announce(&topic_keys, &keys, &ours, now_ms, use_cas).await?
            {
                return Ok(Announced { slot: keys.slot(), bucket, entries, attempts: attempt });
            }
            let pause_ms = 20 + u64::from(random_bytes::<1>()[0]) * (attempt as u64);
            tokio::time::sleep(Duration::from_millis(pause_ms)).await;
        }
        Err(RendezvousError::Contended { attempts: MAX_ATTEMPTS })
    }

    /// One read-merge-write-confirm round over the buckets, from `ours`'s home bucket on. `None` when a
    /// racing writer won and the round should be retried.
    async fn try_announce(
        &self,
        topic: &TopicKeys,
        keys: &SlotKeys,
        ours: &MemberEntry,
        now_ms: u64,
        use_cas: bool,
    ) -> Result<Option<(usize, usize)>, RendezvousError> {
        let home = keys.home_bucket(&ours.key);
        for probe in 0..BUCKETS {
            let bucket = (home + probe) % BUCKETS;
            let read = self.read_bucket(keys, bucket).await;
            let last = probe + 1 == BUCKETS;
            let Some(merged) = value::merge(&read.entries, ours.clone(), topic, now_ms, last) else {
                continue;
            };
            // A value someone pushed to the top sequence number cannot be superseded: skip the bucket.
            let Some(seq) = read.max_seq.map_or(Some(1), |s| s.checked_add(1)) else {
                continue;
            };
            let sealed = value::seal(keys, bucket, &merged, random_bytes::<NONCE_LEN>())?;
            let item = MutableItem::new(keys.signing_key().clone(), &sealed, seq, Some(keys.salt(bucket)));
            let cas = if use_cas { read.max_seq } else { None };
            match self.dht.put_mutable(item, cas).await {
                Ok(_) => {}
                Err(PutMutableError::Concurrency(_)) => return Ok(None),
                Err(PutMutableError::Query(e)) => return Err(RendezvousError::Put(e.to_string())),
            }
            let check = self.read_bucket(keys, bucket).await;
            let stored = check.entries.iter().any(|e| e.key == ours.key && e.seen_ms >= ours.seen_ms);
            return Ok(stored.then_some((bucket, merged.len())));
        }
        Err(RendezvousError::Put("no bucket of this slot accepts a newer value".into()))
    }

    /// Reads every version of `bucket` the closest nodes hold and opens the ones that are ours.
    async fn read_bucket(&self, keys: &SlotKeys, bucket: usize) -> BucketRead {
        let items: Vec<MutableItem> = self
            .dht
            .get_mutable(&keys.public_key(), Some(keys.salt(bucket)), None)
            .take(MAX_VERSIONS)
            .collect()
            .await;
        let mut read = BucketRead::default();
        let mut distinct: Vec<&MutableItem> = Vec::new();
        for item in &items {
            if !distinct.iter().any(|d| d.seq() == item.seq() && d.value() == item.value()) {
                distinct.push(item);
            }
        }
        for item in distinct {
            read.max_seq = Some(read.max_seq.map_or(item.seq(), |s| s.max(item.seq())));
            read.values += 1;
            match value::open(keys, bucket, item.value()) {
                Ok(entries) => read.entries.extend(entries),
                Err(e) => {
                    tracing::debug!(slot = keys.slot(), bucket, error = %e, "refused a rendezvous value");
                    read.refused_values += 1;
                }
            }
        }
        read
    }

    /// The members of `topic` whose entries verify at `now_ms`: reads the current and the previous slot.
    /// Our own entry is among them if we announced.
    pub async fn lookup(&self, topic: &str, now_ms: u64) -> Result<Vec<Member>, RendezvousError> {
        Ok(self.lookup_report(topic, now_ms).await?.members)
    }

    /// [`Rendezvous::lookup`] with counts of what was refused.
    pub async fn lookup_report(&self, topic: &str, now_ms: u64) -> Result<LookupReport, RendezvousError> {
        let topic_keys = TopicKeys::derive(topic)?;
        let slot = slot_of(now_ms);
        let slots: Vec<SlotKeys> =
            [Some(slot), slot.checked_sub(1)].into_iter().flatten().map(|s| topic_keys.slot(s)).collect();
        let reads = futures::future::join_all(
            slots.iter().flat_map(|keys| (0..BUCKETS).map(move |bucket| self.read_bucket(keys, bucket))),
        )
        .await;

        let mut report = LookupReport::default();
        let mut newest: HashMap<wopr_identity::PublicId, Member> = HashMap::new();
        for read in reads {
            report.values += read.values;
            report.refused_values += read.refused_values;
            for entry in read.entries {
                match entry.verify(&topic_keys, now_ms) {
                    Ok(member) => {
                        let keep = newest.get(&member.key).is_none_or(|m| m.seen_ms < member.seen_ms);
                        if keep {
                            newest.insert(member.key, member);
                        }
                    }
                    Err(e) => {
                        tracing::debug!(key = %entry.key.short(), error = %e, "refused a rendezvous entry");
                        report.refused_entries += 1;
                    }
                }
            }
        }
        report.members = newest.into_values().collect();
        report.members.sort_by(|a, b| b.seen_ms.cmp(&a.seen_ms).then(a.key.cmp(&b.key)));
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_entries_must_resolve_without_guessing() {
        assert!(matches!(resolve_bootstrap(&[]), Err(RendezvousError::NoBootstrap)));
        assert!(matches!(
            resolve_bootstrap(&["no-port-here".into()]),
            Err(RendezvousError::BadBootstrap { node, .. }) if node == "no-port-here"
        ));
        assert!(matches!(
            resolve_bootstrap(&["127.0.0.1:6881".into(), "[::1]:6881".into()]),
            Err(RendezvousError::BadBootstrap { node, .. }) if node == "[::1]:6881"
        ));
        assert_eq!(
            resolve_bootstrap(&["127.0.0.1:6881".into()]).unwrap(),
            vec![SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, 6881)]
        );
    }
}
