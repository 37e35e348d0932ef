//! The peers a node sees in its topics, after the checks: the first two layers of spam defence.
//!
//! Layer 1 (signatures): nothing reaches the table unless its author signed it for that topic. Layer 2
//! (the pubkey filter): with an `only` list, profiles of other keys are dropped before their signature
//! is even checked. Beyond that the table bounds what an author or a crowd can make it hold: one entry
//! per author and topic, replaced only by a newer profile; an old profile replayed by someone else does
//! not bring a peer back; at most [`MAX_PEERS_PER_TOPIC`] entries, so a flood of fresh keys fills a topic
//! but cannot grow this node's memory. Peers are ephemeral: an entry that has not been re-announced for
//! [`PEER_TTL_MS`] is dropped by [`PeerTable::expire`].

use std::collections::{BTreeMap, HashMap, HashSet};

use wopr_identity::PublicId;

use super::profile::{Profile, ProfileError};
use super::topic::{TopicMessage, Withdraw};
use crate::MAX_SKEW_MS;

/// How long a peer stays listed without re-announcing itself. Nodes re-announce three times as often.
pub const PEER_TTL_MS: u64 = 60_000;

/// Most peers kept per topic; newcomers beyond it are not listed until someone leaves or expires.
pub const MAX_PEERS_PER_TOPIC: usize = 1024;

/// What the AI content filter (layer 3) said about a profile's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not judged (yet): shown when no filter runs, hidden while a filter is deciding.
    Unjudged,
    /// The filter let it through.
    Allowed(String),
    /// The filter dropped it, and why.
    Filtered(String),
}

/// A peer as the table holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerEntry {
    /// Its newest verified profile for the topic.
    pub profile: Profile,
    /// When that profile arrived (local clock), for expiry.
    pub heard_ms: u64,
    /// When the author was first listed, this time round (local clock).
    pub since_ms: u64,
    /// Layer 3's verdict on the profile's content.
    pub verdict: Verdict,
}

/// What the table did with a topic message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offer {
    /// A peer not listed before.
    New,
    /// A newer profile of a listed peer; `content_changed` says whether layer 3 must judge it again.
    Updated {
        /// The content differs from the previous profile's.
        content_changed: bool,
    },
    /// The author withdrew and was removed.
    Withdrawn,
    /// Nothing new: a duplicate, an older profile, or a withdrawal of nothing listed.
    Unchanged,
    /// Dropped unverified: our own echo, a key outside the `only` list, or a topic this node is not in.
    Ignored,
    /// A profile older than a listed peer's lifetime (a replay of someone gone).
    Stale,
    /// The topic holds as many peers as the table may ([`MAX_PEERS_PER_TOPIC`] by default).
    Full,
    /// Refused by layer 1: the signature or the topic does not verify.
    Refused(ProfileError),
}

/// The verified peers of every joined topic.
#[derive(Debug)]
pub struct PeerTable {
    me: PublicId,
    only: Option<HashSet<PublicId>>,
    capacity: usize,
    topics: BTreeMap<String, HashMap<PublicId, PeerEntry>>,
    /// Per topic, the authors that withdrew and when they said they did: a profile of theirs from
    /// before that (a neighbour relaying what it had not yet seen withdrawn) lists no one. Kept as
    /// long as such a profile could still be fresh, at most `capacity` per topic.
    withdrawn: BTreeMap<String, HashMap<PublicId, u64>>,
}

impl PeerTable {
    /// An empty table for the node `me` (its own announces, echoed back by gossip, are ignored).
    pub fn new(me: PublicId) -> PeerTable {
        PeerTable::with_capacity(me, MAX_PEERS_PER_TOPIC)
    }

    /// An empty table listing at most `capacity` peers per topic.
    pub fn with_capacity(me: PublicId, capacity: usize) -> PeerTable {
        PeerTable { me, only: None, capacity, topics: BTreeMap::new(), withdrawn: BTreeMap::new() }
    }

    /// Layer 2: list only these keys (`None`: everyone). Listed peers outside it are dropped now.
    pub fn set_only(&mut self, only: Option<HashSet<PublicId>>) {
        if let Some(keep) = &only {
            for peers in self.topics.values_mut() {
                peers.retain(|k, _| keep.contains(k));
            }
        }
        self.only = only;
    }

    /// Starts listing peers of `topic`.
    pub fn join(&mut self, topic: &str) {
        self.topics.entry(topic.to_string()).or_default();
    }

    /// Stops listing `topic`; returns the peers it held.
    pub fn leave(&mut self, topic: &str) -> Vec<PublicId> {
        self.withdrawn.remove(topic);
        self.topics.remove(topic).map(|p| p.into_keys().collect()).unwrap_or_default()
    }

    /// The joined topics, in order.
    pub fn topics(&self) -> impl Iterator<Item = &str> {
        self.topics.keys().map(String::as_str)
    }

    /// Runs a message that arrived in `topic` through layers 1 and 2 and the table's bounds. A share is
    /// offered profile by profile ([`TopicMessage::into_listings`]); friend messages list no one.
    pub fn offer(&mut self, topic: &str, message: &TopicMessage, now_ms: u64) -> Offer {
        match message {
            TopicMessage::Announce(profile) => self.offer_profile(topic, profile, now_ms),
            TopicMessage::Withdraw(w) => self.offer_withdrawal(topic, w),
            TopicMessage::Share(_) | TopicMessage::FriendRequest(_) | TopicMessage::FriendAccept(_) => {
                Offer::Ignored
            }
        }
    }

    /// The peers of `topic`, if `author` may be listed there at all (not this node, not outside the
    /// `only` list, a joined topic).
    fn listing(&mut self, topic: &str, author: &PublicId) -> Option<&mut HashMap<PublicId, PeerEntry>> {
        if *author == self.me || self.only.as_ref().is_some_and(|o| !o.contains(author)) {
            return None;
        }
        self.topics.get_mut(topic)
    }

    fn offer_profile(&mut self, topic: &str, profile: &Profile, now_ms: u64) -> Offer {
        let capacity = self.capacity;
        let author = profile.author;
        if self.listing(topic, &author).is_none() {
            return Offer::Ignored;
        }
        let withdrew = self.withdrawn.get(topic).and_then(|w| w.get(&author)).copied();
        let Some(peers) = self.topics.get_mut(topic) else { return Offer::Ignored };
        let known = peers.get(&author);
        if known.is_some_and(|e| e.profile.updated_ms >= profile.updated_ms) {
            return Offer::Unchanged;
        }
        let too_old = profile.updated_ms.saturating_add(PEER_TTL_MS + MAX_SKEW_MS) < now_ms;
        if too_old || withdrew.is_some_and(|at| profile.updated_ms <= at) {
            return Offer::Stale;
        }
        if let Err(e) = profile.verify_for(topic, now_ms) {
            return Offer::Refused(e);
        }
        let since_ms = known.map_or(now_ms, |e| e.since_ms);
        let (offer, verdict) = match known {
            Some(e) if e.profile.content == profile.content => {
                (Offer::Updated { content_changed: false }, e.verdict.clone())
            }
            Some(_) => (Offer::Updated { content_changed: true }, Verdict::Unjudged),
            None if peers.len() >= capacity => return Offer::Full,
            None => (Offer::New, Verdict::Unjudged),
        };
        peers.insert(author, PeerEntry { profile: profile.clone(), heard_ms: now_ms, since_ms, verdict });
        offer
    }

    fn offer_withdrawal(&mut self, topic: &str, w: &Withdraw) -> Offer {
        let Some(peers) = self.listing(topic, &w.author) else { return Offer::Ignored };
        if peers.get(&w.author).is_none_or(|e| e.profile.updated_ms > w.withdrawn_ms) {
            return Offer::Unchanged;
        }
        if let Err(e) = w.verify_for(topic) {
            return Offer::Refused(e);
        }
        peers.remove(&w.author);
        let tombstones = self.withdrawn.entry(topic.to_string()).or_default();
        if tombstones.len() >= self.capacity
            && let Some(oldest) = tombstones.iter().min_by_key(|(_, at)| **at).map(|(k, _)| *k)
        {
            tombstones.remove(&oldest);
        }
        tombstones.insert(w.author, w.withdrawn_ms);
        Offer::Withdrawn
    }

    /// Records layer 3's verdict on `author`'s profile in `topic`, if that profile is still the one
    /// judged (`updated_ms`).
    pub fn set_verdict(&mut self, topic: &str, author: &PublicId, updated_ms: u64, verdict: Verdict) {
        if let Some(e) = self.topics.get_mut(topic).and_then(|p| p.get_mut(author))
            && e.profile.updated_ms == updated_ms
        {
            e.verdict = verdict;
        }
    }

    /// Drops peers silent for longer than [`PEER_TTL_MS`]; returns them with their topic.
    pub fn expire(&mut self, now_ms: u64) -> Vec<(String, PublicId)> {
        for tombstones in self.withdrawn.values_mut() {
            tombstones.retain(|_, at| at.saturating_add(PEER_TTL_MS + MAX_SKEW_MS) >= now_ms);
        }
        let mut gone = Vec::new();
        for (topic, peers) in &mut self.topics {
            peers.retain(|key, e| {
                let alive = now_ms.saturating_sub(e.heard_ms) <= PEER_TTL_MS;
                if !alive {
                    gone.push((topic.clone(), *key));
                }
                alive
            });
        }
        gone
    }

    /// The listed entry of `author` in `topic`.
    pub fn get(&self, topic: &str, author: &PublicId) -> Option<&PeerEntry> {
        self.topics.get(topic)?.get(author)
    }

    /// The listed peers of `topic` (or of every topic), with their topic.
    pub fn peers<'a>(&'a self, topic: Option<&'a str>) -> impl Iterator<Item = (&'a str, &'a PeerEntry)> {
        self.topics
            .iter()
            .filter(move |(t, _)| topic.is_none_or(|want| want == t.as_str()))
            .flat_map(|(t, peers)| peers.values().map(move |e| (t.as_str(), e)))
    }

    /// A listed peer by full hex id, short id or the `name` in its profile content, with its topic.
    pub fn find(&self, query: &str) -> Option<(&str, &PeerEntry)> {
        let query = query.trim();
        self.peers(None).find(|(_, e)| {
            let key = e.profile.author;
            key.to_hex() == query || key.short() == query || profile_name(&e.profile) == Some(query)
        })
    }
}

/// The `name` field of a profile's content, if its content is a JSON object with a string `name`.
pub fn profile_name(profile: &Profile) -> Option<&str> {
    // A light scan, not a JSON parser: wopr-proto has no JSON dependency and the name is only a hint.
    let at = profile.content.find("\"name\"")?;
    let rest = profile.content[at + 6..].trim_start().strip_prefix(':')?.trim_start().strip_prefix('"')?;
    rest.find('"').map(|end| &rest[..end])
}

#[cfg(test)]
mod tests {
    use wopr_identity::Identity;

    use super::*;
    use crate::discovery::Withdraw;

    const NOW: u64 = 1_800_000_000_000;

    fn id(n: u8) -> Identity {
        Identity::from_seeds([n; 32], [n; 32], 0)
    }

    fn announce(who: &Identity, content: &str, at: u64) -> TopicMessage {
        TopicMessage::Announce(Profile::new(who, content, vec!["coffee".into()], at).unwrap())
    }

    fn table() -> PeerTable {
        let mut t = PeerTable::new(id(1).public_id());
        t.join("coffee");
        t
    }

    #[test]
    fn a_verified_profile_is_listed_and_a_newer_one_replaces_it() {
        let mut t = table();
        assert_eq!(t.offer("coffee", &announce(&id(2), r#"{"name":"Bob"}"#, NOW), NOW), Offer::New);
        assert_eq!(t.offer("coffee", &announce(&id(2), r#"{"name":"Bob"}"#, NOW), NOW), Offer::Unchanged);
        let again = announce(&id(2), r#"{"name":"Bob"}"#, NOW + 1);
        assert_eq!(t.offer("coffee", &again, NOW + 1), Offer::Updated { content_changed: false });
        let changed = announce(&id(2), r#"{"name":"Robert"}"#, NOW + 2);
        assert_eq!(t.offer("coffee", &changed, NOW + 2), Offer::Updated { content_changed: true });
        let (topic, entry) = t.find("Robert").unwrap();
        assert_eq!((topic, entry.profile.author), ("coffee", id(2).public_id()));
        assert_eq!(t.get("coffee", &id(2).public_id()), Some(entry));
        assert_eq!(t.get("tea", &id(2).public_id()), None);
        assert!(t.find(&id(2).public_id().short()).is_some());
        assert_eq!(t.peers(None).count(), 1);
    }

    #[test]
    fn forged_foreign_and_echoed_profiles_never_appear() {
        let mut t = table();
        let TopicMessage::Announce(mut forged) = announce(&id(2), r#"{"name":"Bob"}"#, NOW) else {
            unreachable!()
        };
        forged.content = r#"{"name":"FREE BITCOIN"}"#.into();
        let offer = t.offer("coffee", &TopicMessage::Announce(forged), NOW);
        assert_eq!(offer, Offer::Refused(ProfileError::BadSignature));
        assert_eq!(t.offer("coffee", &announce(&id(1), "{}", NOW), NOW), Offer::Ignored);
        assert_eq!(t.offer("tea", &announce(&id(3), "{}", NOW), NOW), Offer::Ignored);
        assert_eq!(t.peers(None).count(), 0);
    }

    #[test]
    fn the_only_list_drops_other_keys_and_what_was_listed() {
        let mut t = table();
        t.offer("coffee", &announce(&id(2), "{}", NOW), NOW);
        t.offer("coffee", &announce(&id(3), "{}", NOW), NOW);
        t.set_only(Some([id(3).public_id()].into()));
        assert_eq!(t.peers(None).map(|(_, e)| e.profile.author).collect::<Vec<_>>(), [id(3).public_id()]);
        assert_eq!(t.offer("coffee", &announce(&id(4), "{}", NOW), NOW), Offer::Ignored);
    }

    #[test]
    fn silent_peers_expire_and_a_replayed_old_profile_does_not_revive_them() {
        let mut t = table();
        let old = announce(&id(2), "{}", NOW);
        t.offer("coffee", &old, NOW);
        assert!(t.expire(NOW + PEER_TTL_MS).is_empty());
        let later = NOW + PEER_TTL_MS + 1;
        assert_eq!(t.expire(later), [("coffee".to_string(), id(2).public_id())]);
        // Someone replays the last profile within the clock window: listed again, but only for a TTL.
        assert_eq!(t.offer("coffee", &old, later), Offer::New);
        let much_later = NOW + PEER_TTL_MS + MAX_SKEW_MS + 1;
        t.expire(much_later);
        assert_eq!(t.offer("coffee", &old, much_later), Offer::Stale);
        assert_eq!(t.peers(None).count(), 0);
    }

    #[test]
    fn a_withdrawal_removes_only_older_profiles_and_only_its_authors() {
        let mut t = table();
        t.offer("coffee", &announce(&id(2), "{}", NOW + 10), NOW);
        let early = TopicMessage::Withdraw(Withdraw::new(&id(2), "coffee", NOW + 5));
        assert_eq!(t.offer("coffee", &early, NOW), Offer::Unchanged);
        let TopicMessage::Withdraw(mut forged) =
            TopicMessage::Withdraw(Withdraw::new(&id(3), "coffee", NOW + 20))
        else {
            unreachable!()
        };
        forged.author = id(2).public_id();
        assert_eq!(
            t.offer("coffee", &TopicMessage::Withdraw(forged), NOW),
            Offer::Refused(ProfileError::BadSignature)
        );
        let bye = TopicMessage::Withdraw(Withdraw::new(&id(2), "coffee", NOW + 20));
        assert_eq!(t.offer("coffee", &bye, NOW), Offer::Withdrawn);
        assert_eq!(t.peers(None).count(), 0);
    }

    #[test]
    fn a_withdrawn_profile_relayed_again_does_not_list_its_author_but_a_newer_one_does() {
        let mut t = table();
        let last = announce(&id(2), "{}", NOW + 10);
        t.offer("coffee", &last, NOW);
        let bye = TopicMessage::Withdraw(Withdraw::new(&id(2), "coffee", NOW + 20));
        assert_eq!(t.offer("coffee", &bye, NOW + 20), Offer::Withdrawn);
        // A neighbour that had not heard the withdrawal yet shares the author's last profile.
        assert_eq!(t.offer("coffee", &last, NOW + 30), Offer::Stale);
        assert_eq!(t.peers(None).count(), 0, "a withdrawn peer came back from a relayed old profile");
        // The author joins again later: its new profile lists it.
        assert_eq!(t.offer("coffee", &announce(&id(2), "{}", NOW + 40), NOW + 40), Offer::New);
        // Tombstones go with the lifetime of what they refuse.
        t.offer("coffee", &bye, NOW + 40);
        t.expire(NOW + 20 + PEER_TTL_MS + MAX_SKEW_MS + 1);
        assert!(t.withdrawn.values().all(HashMap::is_empty), "tombstones outlived the profiles they refuse");
    }

    #[test]
    fn a_flood_of_fresh_keys_fills_a_topic_but_no_further() {
        const CAP: usize = 40;
        let mut t = PeerTable::with_capacity(id(1).public_id(), CAP);
        t.join("coffee");
        for i in 0..CAP + 10 {
            let who = Identity::from_seeds(seed(i), [0; 32], 0);
            let offer = t.offer("coffee", &announce(&who, "{}", NOW), NOW);
            assert_eq!(offer, if i < CAP { Offer::New } else { Offer::Full }, "peer {i}");
        }
        // A listed peer still gets through with its updates.
        let first = Identity::from_seeds(seed(0), [0; 32], 0);
        assert_eq!(
            t.offer("coffee", &announce(&first, "{}", NOW + 1), NOW + 1),
            Offer::Updated { content_changed: false }
        );
        assert_eq!(t.peers(Some("coffee")).count(), CAP);
        assert_eq!(t.leave("coffee").len(), CAP);
        assert_eq!(t.peers(None).count(), 0);
    }

    fn seed(i: usize) -> [u8; 32] {
        let mut s = [0xAB; 32];
        s[..8].copy_from_slice(&(i as u64).to_be_bytes());
        s
    }

    #[test]
    fn a_verdict_sticks_while_the_content_does_and_only_to_the_version_judged() {
        let mut t = table();
        t.offer("coffee", &announce(&id(2), "{}", NOW), NOW);
        let bob = id(2).public_id();
        t.set_verdict("coffee", &bob, NOW - 1, Verdict::Filtered("stale".into()));
        assert_eq!(t.peers(None).next().unwrap().1.verdict, Verdict::Unjudged);
        t.set_verdict("coffee", &bob, NOW, Verdict::Filtered("junk".into()));
        t.offer("coffee", &announce(&id(2), "{}", NOW + 1), NOW + 1);
        assert_eq!(t.peers(None).next().unwrap().1.verdict, Verdict::Filtered("junk".into()));
        t.offer("coffee", &announce(&id(2), r#"{"a":1}"#, NOW + 2), NOW + 2);
        assert_eq!(t.peers(None).next().unwrap().1.verdict, Verdict::Unjudged);
    }

    #[test]
    fn a_name_is_read_from_the_content() {
        let p = |c: &str| Profile::new(&id(2), c, vec!["coffee".into()], NOW).unwrap();
        assert_eq!(profile_name(&p(r#"{"name": "Alice", "skills": []}"#)), Some("Alice"));
        assert_eq!(profile_name(&p(r#"{"skills": []}"#)), None);
        assert_eq!(profile_name(&p(r#"{"name": 3}"#)), None);
    }
}
