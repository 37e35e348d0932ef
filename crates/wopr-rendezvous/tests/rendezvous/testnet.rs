//! Topic rendezvous against a local mainline testnet (10 DHT nodes on 127.0.0.1). Every node here is
//! given the testnet's bootstrap list: nothing touches the public DHT.

use std::collections::BTreeMap;

use futures::StreamExt;
use mainline::async_dht::AsyncDht;
use mainline::{Dht, MutableItem, Testnet};
use wopr_identity::{Identity, PublicId};
use wopr_rendezvous::value::{self, NONCE_LEN};
use wopr_rendezvous::{
    MEMBER_TTL_MS, MemberEntry, Rendezvous, RendezvousError, SlotKeys, TopicKeys, slot_of,
};

async fn testnet() -> Testnet {
    tokio::task::spawn_blocking(|| Testnet::builder(10).build().expect("testnet")).await.unwrap()
}

async fn node(net: &Testnet) -> Rendezvous {
    Rendezvous::start(Some(net.bootstrap.clone())).await.expect("rendezvous node")
}

/// A plain DHT client, as someone who knows the topic name but plays no part in WOPR would use.
async fn raw_client(net: &Testnet) -> AsyncDht {
    let bootstrap = net.bootstrap.clone();
    tokio::task::spawn_blocking(move || Dht::builder().bootstrap(&bootstrap).build().expect("dht client"))
        .await
        .unwrap()
        .as_async()
}

/// Writes `bytes` as the value of `bucket`, above every version the DHT holds.
async fn put_raw(dht: &AsyncDht, keys: &SlotKeys, bucket: usize, bytes: &[u8]) {
    let salt = keys.salt(bucket);
    let max_seq = dht
        .get_mutable(&keys.public_key(), Some(salt), None)
        .fold(0, |m, item| async move { m.max(item.seq()) })
        .await;
    let item = MutableItem::new(keys.signing_key().clone(), bytes, max_seq + 1, Some(salt));
    dht.put_mutable(item, None).await.expect("raw put");
}

/// Reads the entries of `bucket` as stored (most recent version).
async fn entries_of(dht: &AsyncDht, keys: &SlotKeys, bucket: usize) -> Vec<MemberEntry> {
    let item =
        dht.get_mutable_most_recent(&keys.public_key(), Some(keys.salt(bucket))).await.expect("a value");
    value::open(keys, bucket, item.value()).expect("our own value opens")
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

fn hints_of(i: usize) -> Vec<String> {
    vec![format!("127.0.0.1:{}", 40_000 + i), format!("https://relay{i}.example/")]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_members_are_found_by_a_fresh_node_that_knows_only_the_name() {
    let net = testnet().await;
    let now = now_ms();
    let members: Vec<Identity> = (0..5).map(|_| Identity::generate()).collect();
    let mut nodes = Vec::new();
    for _ in &members {
        nodes.push(node(&net).await);
    }
    // All at once, so members sharing a bucket race each other's writes.
    let hints: Vec<Vec<String>> = (0..members.len()).map(hints_of).collect();
    let announced = futures::future::join_all(
        nodes.iter().zip(&members).zip(&hints).map(|((n, id), h)| n.announce_at("t", id, h, now)),
    )
    .await;
    for a in &announced {
        let a = a.as_ref().expect("announce");
        assert_eq!(a.slot, slot_of(now));
    }

    let joiner = node(&net).await;
    let report = joiner.lookup_report("t", now + 1_000).await.unwrap();
    let found: BTreeMap<PublicId, Vec<String>> =
        report.members.iter().map(|m| (m.key, m.hints.clone())).collect();
    let expected: BTreeMap<PublicId, Vec<String>> =
        members.iter().enumerate().map(|(i, id)| (id.public_id(), hints_of(i))).collect();
    assert_eq!(found, expected);
    assert!(report.members.iter().all(|m| m.seen_ms == now));
    assert_eq!(report.refused_values, 0);

    // The same from inside a spawned task: the lookup future is Send and keeps workers free.
    let spawned = tokio::spawn(async move { joiner.lookup("t", now + 1_000).await }).await.unwrap().unwrap();
    assert_eq!(spawned.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_looking_up_another_name_finds_nobody() {
    let net = testnet().await;
    let now = now_ms();
    let (a, b) = (node(&net).await, node(&net).await);
    a.announce_at("t", &Identity::generate(), &hints_of(0), now).await.unwrap();
    b.announce_at("t", &Identity::generate(), &hints_of(1), now).await.unwrap();

    let joiner = node(&net).await;
    assert_eq!(joiner.lookup("t", now).await.unwrap().len(), 2);
    let other = joiner.lookup_report("u", now).await.unwrap();
    assert!(other.members.is_empty());
    assert_eq!(other.values, 0, "nothing at all is stored under another name's keys");
    let near_miss = joiner.lookup_report("t ", now).await.unwrap();
    assert!(near_miss.members.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_entries_written_with_the_derived_key_are_ignored() {
    let net = testnet().await;
    let now = now_ms();
    let honest = Identity::generate();
    let announced = node(&net).await.announce_at("t", &honest, &hints_of(0), now).await.unwrap();

    // The attacker knows the name, so it holds the slot's keys and can write any value.
    let topic = TopicKeys::derive("t").unwrap();
    let keys = topic.slot(slot_of(now));
    let attacker = raw_client(&net).await;
    let mut entries = entries_of(&attacker, &keys, announced.bucket).await;
    assert_eq!(entries.len(), 1);
    let (forger, victim) = (Identity::generate(), Identity::generate());
    // An entry claiming the victim's key, signed by the forger.
    let mut claimed = MemberEntry::sign(&forger, &topic, &hints_of(6), now).unwrap();
    claimed.key = victim.public_id();
    // The honest member's entry with its hints redirected to the attacker.
    let mut redirected = entries[0].clone();
    redirected.hints = vec!["10.6.6.6:4433".into()];
    // A real member signature, but made for another topic.
    let elsewhere =
        MemberEntry::sign(&forger, &TopicKeys::derive("other").unwrap(), &hints_of(7), now).unwrap();
    entries.extend([claimed, redirected, elsewhere]);
    put_raw(
        &attacker,
        &keys,
        announced.bucket,
        &value::seal(&keys, announced.bucket, &entries, [7; NONCE_LEN]).unwrap(),
    )
    .await;
    // And junk that does not even decrypt, in another bucket.
    let junk_bucket = (announced.bucket + 1) % wopr_rendezvous::BUCKETS;
    put_raw(&attacker, &keys, junk_bucket, &[0x5a; 300]).await;

    let report = node(&net).await.lookup_report("t", now).await.unwrap();
    assert_eq!(report.members.len(), 1, "{report:?}");
    assert_eq!(report.members[0].key, honest.public_id());
    assert_eq!(report.members[0].hints, hints_of(0));
    assert!(report.refused_entries >= 3, "{report:?}");
    assert!(report.refused_values >= 1, "{report:?}");

    // A member announcing into that bucket after the attack writes a clean value: the forgeries are not
    // carried over.
    let late = std::iter::repeat_with(Identity::generate)
        .find(|id| keys.home_bucket(&id.public_id()) == announced.bucket)
        .unwrap();
    let again = node(&net).await.announce_at("t", &late, &hints_of(1), now + 1).await.unwrap();
    assert_eq!(again.bucket, announced.bucket);
    let stored = entries_of(&attacker, &keys, again.bucket).await;
    let keys_stored: Vec<PublicId> = stored.iter().map(|e| e.key).collect();
    assert_eq!(keys_stored, vec![late.public_id(), honest.public_id()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_older_than_the_window_is_ignored() {
    let net = testnet().await;
    let now = now_ms();
    let fresh = Identity::generate();
    let announced = node(&net).await.announce_at("t", &fresh, &hints_of(0), now).await.unwrap();

    // Someone replays a member's genuine but old entry into the current slot.
    let topic = TopicKeys::derive("t").unwrap();
    let keys = topic.slot(slot_of(now));
    let old_member = Identity::generate();
    let old = MemberEntry::sign(&old_member, &topic, &hints_of(1), now - MEMBER_TTL_MS - 1).unwrap();
    assert!(old.verify(&topic, now - MEMBER_TTL_MS).is_ok(), "the entry itself is genuine");
    let replayer = raw_client(&net).await;
    let mut entries = entries_of(&replayer, &keys, announced.bucket).await;
    entries.push(old);
    put_raw(
        &replayer,
        &keys,
        announced.bucket,
        &value::seal(&keys, announced.bucket, &entries, [1; NONCE_LEN]).unwrap(),
    )
    .await;

    let report = node(&net).await.lookup_report("t", now).await.unwrap();
    let keys_found: Vec<PublicId> = report.members.iter().map(|m| m.key).collect();
    assert_eq!(keys_found, vec![fresh.public_id()]);
    assert_eq!(report.refused_entries, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_replaces_the_members_entry_instead_of_adding_one() {
    let net = testnet().await;
    let now = now_ms();
    // Both announces in the same slot (the slot's start and a second later) so they share a bucket.
    let start = slot_of(now) * wopr_rendezvous::SLOT_MS;
    let me = Identity::generate();
    let rv = node(&net).await;
    let first = rv.announce_at("t", &me, &hints_of(0), start).await.unwrap();
    let second = rv.announce_at("t", &me, &hints_of(1), start + 1_000).await.unwrap();
    assert_eq!(first.bucket, second.bucket);
    assert_eq!(second.entries, 1);

    let members = node(&net).await.lookup("t", start + 2_000).await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!((members[0].seen_ms, members[0].hints.clone()), (start + 1_000, hints_of(1)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_of_the_previous_slot_is_found_and_one_from_two_slots_ago_is_not() {
    let net = testnet().await;
    let now = now_ms();
    let start = slot_of(now) * wopr_rendezvous::SLOT_MS;
    let (recent, gone) = (Identity::generate(), Identity::generate());
    let rv = node(&net).await;
    // One minute ago (still within the window) and two minutes ago (its slot is no longer read).
    rv.announce_at("t", &recent, &hints_of(0), start - 1).await.unwrap();
    rv.announce_at("t", &gone, &hints_of(1), start - wopr_rendezvous::SLOT_MS - 1).await.unwrap();

    let members = node(&net).await.lookup("t", start + 1_000).await.unwrap();
    let keys_found: Vec<PublicId> = members.iter().map(|m| m.key).collect();
    assert_eq!(keys_found, vec![recent.public_id()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_says_so_when_no_bootstrap_node_answers() {
    // A loopback port nothing listens on: the node bootstraps from nobody.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    drop(silent);
    let err = Rendezvous::start(Some(vec![addr.clone()])).await.unwrap_err();
    assert!(matches!(&err, RendezvousError::Unreachable { bootstrap } if *bootstrap == addr), "{err}");
    assert!(matches!(Rendezvous::start(Some(vec![])).await, Err(RendezvousError::NoBootstrap)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_topic_names_and_hints_are_refused_before_anything_is_written() {
    let net = testnet().await;
    let rv = node(&net).await;
    let me = Identity::generate();
    let now = now_ms();
    assert!(matches!(
        rv.announce_at("", &me, &[], now).await,
        Err(RendezvousError::Record(wopr_rendezvous::RecordError::BadTopicName))
    ));
    assert!(matches!(
        rv.announce_at("t", &me, &["has space".into()], now).await,
        Err(RendezvousError::Record(wopr_rendezvous::RecordError::BadHint))
    ));
    let report = rv.lookup_report("t", now).await.unwrap();
    assert_eq!(report.values, 0);
}
