use std::os::unix::fs::PermissionsExt;

use super::*;

const NOW: u64 = 1_700_000_000_000;

fn key() -> PublicId {
    wopr_identity::Identity::generate().public_id()
}

fn home() -> (tempfile::TempDir, Home) {
    let d = tempfile::tempdir().unwrap();
    let h = Home::at(d.path().join("home"));
    (d, h)
}

fn friend(name: &str, k: PublicId) -> Friend {
    Friend::new(name, k, [7; 32], vec!["127.0.0.1:7438".into()], NOW).unwrap()
}

fn incoming(name: &str, from: PublicId, at: u64) -> IncomingRequest {
    IncomingRequest {
        from,
        name: name.into(),
        line: format!("FRIEND_REQUEST | from:{name}"),
        received_at: at,
        topic: None,
    }
}

fn outgoing(to: PublicId, at: u64) -> OutgoingRequest {
    OutgoingRequest { to, name: to.short(), line: "FRIEND_REQUEST | to:...".into(), sent_at: at }
}

#[test]
fn a_friends_session_is_named_after_its_display_name_and_short_id() {
    let k = key();
    let s = friend_session_name("alice", &k).unwrap();
    assert_eq!(s.as_str(), format!("friend:p2p:alice({})", k.short()));
    assert_eq!(friend("alice", k).session, s);
    for bad in ["", "a b", "../x", "a/b", ".x", "a:b", &"x".repeat(65)] {
        assert!(friend_session_name(bad, &k).unwrap_err().is_invalid_input(), "{bad:?}");
    }
    assert!(friend_session_name("a..b", &k).unwrap_err().is_invalid_input(), "no '..' in a session name");
    assert!(friend_session_name(&"x".repeat(64), &k).is_ok());
}

#[test]
fn the_document_is_0600_and_round_trips_every_section() {
    let (_d, home) = home();
    let friends = home.friends();
    let (a, b, c) = (key(), key(), key());
    friends.add(friend("alice", a)).unwrap();
    friends.add_outgoing(outgoing(b, NOW), NOW).unwrap();
    friends.add_incoming(incoming("carol", c, NOW), NOW).unwrap();
    friends.add_rule("bot1|bot2").unwrap();
    let mode = std::fs::metadata(home.file(FRIENDS_FILE)).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let doc = friends.load().unwrap();
    assert_eq!(doc.friends, [friend("alice", a)]);
    assert_eq!(doc.outgoing, [outgoing(b, NOW)]);
    assert_eq!(doc.incoming, [incoming("carol", c, NOW)]);
    assert_eq!(doc.auto_accept.patterns(), ["bot1|bot2"]);
    let text = std::fs::read_to_string(home.file(FRIENDS_FILE)).unwrap();
    let back: FriendsFile = serde_json::from_str(&text).unwrap();
    assert_eq!(back, doc);
    for field in ["\"publicKey\"", "\"autoAccept\"", "\"sentAt\"", "\"receivedAt\"", "friend:p2p:alice("] {
        assert!(text.contains(field), "{field} in {text}");
    }
}

#[test]
fn a_friend_is_found_by_name_short_id_and_full_id_and_removed() {
    let (_d, home) = home();
    let friends = home.friends();
    let (a, b) = (key(), key());
    friends.add(friend("alice", a)).unwrap();
    friends.add(friend("bob", b)).unwrap();
    let doc = friends.load().unwrap();
    for q in ["alice".to_string(), a.short(), a.to_hex(), a.to_url()] {
        assert_eq!(doc.resolve(&q, NOW).unwrap().public_key, a, "{q}");
    }
    assert!(matches!(doc.resolve("carol", NOW), Err(StoreError::NotFound(_))));
    assert_eq!(friends.remove(&b.short(), NOW).unwrap().name, "bob");
    assert!(matches!(friends.remove("bob", NOW), Err(StoreError::NotFound(_))));
    let doc = friends.load().unwrap();
    assert_eq!(doc.friends.len(), 1);
    assert!(doc.by_key(&b).is_none() && doc.by_key(&a).is_some());
}

#[test]
fn two_friends_who_claim_one_name_get_distinct_names_and_sessions() {
    let (_d, home) = home();
    let friends = home.friends();
    let (a, impostor) = (key(), key());
    let first = friends.add(friend("alice", a)).unwrap();
    let second = friends.add(friend("alice", impostor)).unwrap();
    assert_eq!((first.name.as_str(), second.name.as_str()), ("alice", "alice-2"));
    assert_ne!(first.session, second.session);
    assert_eq!(second.session.as_str(), format!("friend:p2p:alice({})", impostor.short()));
    assert_eq!(friends.load().unwrap().resolve("alice", NOW).unwrap().public_key, a);
    // Making friends again keeps the name, session and date, and takes the new hints.
    let mut again = Friend::new("renamed", a, [9; 32], vec!["10.0.0.9:1".into()], NOW + 5).unwrap();
    again.auto_accepted = true;
    let kept = friends.add(again).unwrap();
    assert_eq!((kept.name.as_str(), kept.session.clone(), kept.since), ("alice", first.session, NOW));
    assert_eq!(
        (kept.hints.as_slice(), kept.encrypt_pub.as_str()),
        (&["10.0.0.9:1".to_string()][..], &*hex::encode([9; 32]))
    );
    assert_eq!(friends.load().unwrap().friends.len(), 2);
}

#[test]
fn making_a_friend_settles_its_pending_requests_both_ways() {
    let (_d, home) = home();
    let friends = home.friends();
    let (a, b) = (key(), key());
    friends.add_outgoing(outgoing(a, NOW), NOW).unwrap();
    friends.add_incoming(incoming("alice", a, NOW), NOW).unwrap();
    friends.add_outgoing(outgoing(b, NOW), NOW).unwrap();
    friends.add(friend("alice", a)).unwrap();
    let doc = friends.load().unwrap();
    assert!(doc.outgoing_to(&a, NOW).is_none());
    assert!(doc.resolve_incoming("alice", NOW).is_err());
    assert_eq!(doc.outgoing_to(&b, NOW).unwrap().to, b, "another peer's request is untouched");
    friends.remove("alice", NOW).unwrap();
    friends.add_outgoing(outgoing(a, NOW), NOW).unwrap();
    friends.add(friend("alice", a)).unwrap();
    friends.remove("alice", NOW).unwrap();
    assert!(friends.load().unwrap().outgoing_to(&a, NOW).is_none());
}

#[test]
fn a_new_request_to_or_from_a_key_replaces_the_earlier_one() {
    let (_d, home) = home();
    let friends = home.friends();
    let a = key();
    friends.add_outgoing(outgoing(a, NOW), NOW).unwrap();
    friends.add_outgoing(OutgoingRequest { line: "second".into(), ..outgoing(a, NOW + 1) }, NOW + 1).unwrap();
    friends.add_incoming(incoming("alice", a, NOW), NOW).unwrap();
    friends.add_incoming(incoming("alice", a, NOW + 1), NOW + 1).unwrap();
    let doc = friends.load().unwrap();
    assert_eq!((doc.outgoing.len(), doc.outgoing[0].line.as_str()), (1, "second"));
    assert_eq!((doc.incoming.len(), doc.incoming[0].received_at), (1, NOW + 1));
}

#[test]
fn pending_requests_expire_after_seven_days() {
    let (_d, home) = home();
    let friends = home.friends();
    let (a, b) = (key(), key());
    friends.add_outgoing(outgoing(a, NOW), NOW).unwrap();
    friends.add_incoming(incoming("bob", b, NOW), NOW).unwrap();
    let end = NOW + PENDING_TTL_MS;
    let doc = friends.load().unwrap();
    assert!(doc.outgoing_to(&a, end - 1).is_some() && doc.resolve_incoming("bob", end - 1).is_ok());
    assert!(doc.outgoing_to(&a, end).is_none());
    assert!(matches!(doc.resolve_incoming("bob", end), Err(StoreError::NotFound(_))));
    assert_eq!(friends.expire(end - 1).unwrap(), 0);
    assert_eq!(friends.expire(end).unwrap(), 2);
    let doc = friends.load().unwrap();
    assert!(doc.outgoing.is_empty() && doc.incoming.is_empty());
}

#[test]
fn an_incoming_name_claimed_by_two_keys_is_not_guessed() {
    let (_d, home) = home();
    let friends = home.friends();
    let (a, impostor) = (key(), key());
    friends.add_incoming(incoming("alice", a, NOW), NOW).unwrap();
    friends.add_incoming(incoming("alice", impostor, NOW + 1), NOW + 1).unwrap();
    let doc = friends.load().unwrap();
    let err = doc.resolve_incoming("alice", NOW).unwrap_err();
    assert!(err.is_invalid_input() && err.to_string().contains(&a.short()), "{err}");
    assert_eq!(doc.resolve_incoming(&a.short(), NOW).unwrap().from, a);
    assert_eq!(doc.resolve_incoming(&impostor.to_hex(), NOW).unwrap().from, impostor);
    assert_eq!(friends.remove_incoming(&impostor.short(), NOW).unwrap().from, impostor);
    assert_eq!(friends.load().unwrap().resolve_incoming("alice", NOW).unwrap().from, a);
    assert!(friends.add_incoming(incoming("bad name", key(), NOW), NOW).unwrap_err().is_invalid_input());
}

#[test]
fn incoming_requests_are_bounded_and_the_oldest_goes_first() {
    let (_d, home) = home();
    let friends = home.friends();
    let keys: Vec<PublicId> = (0..MAX_PENDING_INCOMING + 2).map(|_| key()).collect();
    // One write of the whole list, as many requests would leave it.
    home.update_json(FRIENDS_FILE, |doc: &mut FriendsFile| {
        doc.incoming = keys[..MAX_PENDING_INCOMING].iter().map(|k| incoming("x", *k, NOW)).collect();
        Ok(())
    })
    .unwrap();
    friends.add_incoming(incoming("y", keys[MAX_PENDING_INCOMING], NOW + 1), NOW + 1).unwrap();
    friends.add_incoming(incoming("z", keys[MAX_PENDING_INCOMING + 1], NOW + 2), NOW + 2).unwrap();
    let doc = friends.load().unwrap();
    assert_eq!(doc.incoming.len(), MAX_PENDING_INCOMING);
    assert_eq!(doc.incoming[0].from, keys[2]);
    assert_eq!(doc.incoming.last().unwrap().from, keys[MAX_PENDING_INCOMING + 1]);
}

#[test]
fn auto_accept_rules_are_added_listed_and_removed() {
    let (_d, home) = home();
    let friends = home.friends();
    assert_eq!(friends.add_rule("trusted-bot").unwrap(), ("trusted-bot".to_string(), true));
    assert_eq!(friends.add_rule(" a | b ").unwrap(), ("a|b".to_string(), true));
    assert!(!friends.add_rule("a|b").unwrap().1);
    assert!(friends.add_rule("bot*").unwrap_err().is_invalid_input());
    let doc = friends.load().unwrap();
    assert_eq!(doc.auto_accept.patterns(), ["trusted-bot", "a|b"]);
    assert!(doc.auto_accept.matches("b", &key()) && !doc.auto_accept.matches("c", &key()));
    assert_eq!(friends.remove_rule("trusted-bot").unwrap(), "trusted-bot");
    assert!(matches!(friends.remove_rule("*"), Err(StoreError::NotFound(_))));
    assert_eq!(friends.load().unwrap().auto_accept.patterns(), ["a|b"]);
}

#[test]
fn concurrent_updates_lose_nothing() {
    let (_d, home) = home();
    let keys: Vec<PublicId> = (0..16).map(|_| key()).collect();
    std::thread::scope(|s| {
        for (i, k) in keys.iter().enumerate() {
            let friends = home.friends();
            s.spawn(move || match i % 4 {
                0 => drop(friends.add(friend(&format!("f{i}"), *k)).unwrap()),
                1 => friends.add_outgoing(outgoing(*k, NOW), NOW).unwrap(),
                2 => friends.add_incoming(incoming(&format!("i{i}"), *k, NOW), NOW).unwrap(),
                _ => drop(friends.add_rule(&format!("r{i}")).unwrap()),
            });
        }
    });
    let doc = home.friends().load().unwrap();
    assert_eq!(
        (doc.friends.len(), doc.outgoing.len(), doc.incoming.len(), doc.auto_accept.patterns().len()),
        (4, 4, 4, 4)
    );
}

#[test]
fn malformed_json_is_an_error_and_nothing_is_overwritten() {
    let (_d, home) = home();
    home.ensure().unwrap();
    std::fs::write(home.file(FRIENDS_FILE), b"{\"friends\": [").unwrap();
    assert!(matches!(home.friends().add_rule("*"), Err(StoreError::Json { .. })));
    assert_eq!(std::fs::read(home.file(FRIENDS_FILE)).unwrap(), b"{\"friends\": [");
}

#[test]
fn a_friend_follows_its_key_rotation_and_keeps_its_name_and_session() {
    let (_d, h) = home();
    let (old, new) = (key(), key());
    let added = h.friends().add(friend("alice", old)).unwrap();
    h.friends().add_incoming(incoming("alice", old, NOW), NOW).unwrap();
    assert!(h.friends().rotate_key(&old, &new, [8; 32], NOW + 1000).unwrap());
    let doc = h.friends().load().unwrap();
    let f = doc.by_key(&new).expect("the friend under its new key");
    assert_eq!((f.name.as_str(), &f.session, f.since), ("alice", &added.session, added.since));
    assert_eq!(f.short_id, new.short());
    assert_eq!(f.encrypt_pub, hex::encode([8; 32]));
    assert_eq!(f.old_keys, vec![OldKey { key: old, accepted_until: NOW + 1000 }]);
    assert!(doc.by_key(&old).is_none());
    assert!(doc.incoming.is_empty(), "a request signed by the old key is dropped");
    assert!(f.answers_to(&old, NOW + 999) && !f.answers_to(&old, NOW + 1000));
    // A key no friend has: nothing changes.
    assert!(!h.friends().rotate_key(&key(), &key(), [9; 32], NOW).unwrap());
    assert_eq!(h.friends().load().unwrap(), doc);
}
