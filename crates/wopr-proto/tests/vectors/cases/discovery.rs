//! Discovery (§14): topic messages at a receiver's peer table, connect-requests at their target, and the
//! decoding rules of message types 10 to 13.

use serde_json::{Value, json};
use wopr_identity::PublicId;
use wopr_proto::MAX_SKEW_MS;
use wopr_proto::codec::{Encode, Writer};
use wopr_proto::discovery::{
    MAX_CONTENT, MAX_PROFILE_BYTES, MAX_TOPIC_MESSAGE, PEER_TTL_MS, Profile, Share, TopicMessage,
    WITHDRAW_DOMAIN, Withdraw,
};
use wopr_proto::friend::MAX_FRIEND_BYTES;
use wopr_proto::message::{ConnectRequest, Envelope, MAX_CONNECT_NOTE, Message};

use super::{Accepted, Cases, Fails};
use crate::fixtures::{ALICE, BOB, BOB_NEXT, NOW, name_of};
use crate::world::{PROFILE_CONTENT, TOPIC, World, alice_profile};

const INVALID: Option<u8> = Some(3);

fn announce(p: &Profile) -> Vec<u8> {
    TopicMessage::Announce(p.clone()).to_bytes()
}

fn withdrawal(w: &Withdraw) -> Vec<u8> {
    TopicMessage::Withdraw(w.clone()).to_bytes()
}

fn edited(p: &Profile, edit: impl FnOnce(&mut Profile)) -> Profile {
    let mut p = p.clone();
    edit(&mut p);
    p
}

/// A receiver's table: who it is, the topics it joined, its `only` list, its capacity, and the
/// messages it took before (each `(topic, message, now_ms)`).
#[derive(Clone)]
struct Table {
    me: &'static str,
    joined: Vec<&'static str>,
    only: Option<Vec<&'static str>>,
    capacity: usize,
    before: Vec<(&'static str, Vec<u8>, u64)>,
}

impl Table {
    /// bob, in `coffee` and `tea`, listing anyone, up to 1,024 peers per topic, nothing heard yet.
    fn bob() -> Table {
        Table { me: BOB.name, joined: vec!["coffee", "tea"], only: None, capacity: 1024, before: vec![] }
    }

    fn after(mut self, topic: &'static str, message: Vec<u8>, now_ms: u64) -> Table {
        self.before.push((topic, message, now_ms));
        self
    }

    /// The case's input: this table, then `message` arriving in `topic` at `now_ms`.
    fn offer(&self, topic: &str, message: &[u8], now_ms: u64) -> Value {
        json!({
            "me": self.me,
            "joined": self.joined,
            "only": self.only,
            "capacity": self.capacity,
            "before": self.before.iter().map(|(t, m, at)| json!({
                "topic": t,
                "message": hex::encode(m),
                "now_ms": at,
            })).collect::<Vec<_>>(),
            "topic": topic,
            "message": hex::encode(message),
            "now_ms": now_ms,
        })
    }
}

/// An announce of a profile of alice with these fields, unsigned: for decoding rules, which come first.
fn raw_profile(topics: Vec<String>, hints: Vec<String>, content: &str) -> Vec<u8> {
    let p = Profile {
        author: ALICE.id(),
        encrypt_pub: ALICE.identity().encrypt_pub(),
        content: content.into(),
        topics,
        hints,
        updated_ms: NOW,
        signature: [0; 64],
    };
    [vec![1], p.to_bytes()].concat()
}

pub fn topic_messages<'a>(world: &World, identities: &'a Value) -> Cases<'a> {
    let mut c = Cases::new("topic_message", identities);
    let profile = &world.profile;
    let genuine = announce(profile);
    let bob = Table::bob();
    let forged = announce(&edited(profile, |p| p.content = r#"{"name":"FREE COINS"}"#.into()));
    let later = NOW + 20_000;
    let newer = announce(&alice_profile(&[TOPIC], r#"{"name":"alice","skills":["rust"]}"#, later));
    let renewed = announce(&alice_profile(&[TOPIC], PROFILE_CONTENT, later));
    let listed = bob.clone().after(TOPIC, genuine.clone(), NOW);
    let stale_at = NOW + PEER_TTL_MS + MAX_SKEW_MS;

    // Announces that are taken, and the table's answer.
    c.add("alices_announce", bob.offer(TOPIC, &genuine, NOW), Accepted);
    c.add("five_minutes_ahead", bob.offer(TOPIC, &genuine, NOW - MAX_SKEW_MS), Accepted);
    c.add("as_old_as_a_listing_may_be", bob.offer(TOPIC, &genuine, stale_at), Accepted);
    c.add("a_newer_profile", listed.offer(TOPIC, &newer, later), Accepted);
    c.add("a_newer_profile_same_content", listed.offer(TOPIC, &renewed, later), Accepted);
    c.add("the_same_profile_again", listed.offer(TOPIC, &genuine, NOW + 1), Accepted);
    let listed_newer = bob.clone().after(TOPIC, newer.clone(), later);
    c.add("an_older_profile", listed_newer.offer(TOPIC, &genuine, later), Accepted);
    let two_topics = announce(&alice_profile(&["tea", TOPIC], PROFILE_CONTENT, NOW));
    c.add("a_profile_naming_two_topics", bob.offer(TOPIC, &two_topics, NOW), Accepted);
    let echo = Table { me: ALICE.name, ..bob.clone() };
    c.add("its_own_echo", echo.offer(TOPIC, &genuine, NOW), Accepted);
    let only_next = Table { only: Some(vec![BOB_NEXT.name]), ..bob.clone() };
    c.add("outside_the_only_list", only_next.offer(TOPIC, &genuine, NOW), Accepted);
    let only_alice = Table { only: Some(vec![ALICE.name]), ..bob.clone() };
    c.add("inside_the_only_list", only_alice.offer(TOPIC, &genuine, NOW), Accepted);
    let elsewhere = Table { joined: vec!["tea"], ..bob.clone() };
    c.add("a_topic_not_joined", elsewhere.offer(TOPIC, &genuine, NOW), Accepted);
    let next = &world.bob_next;
    let next_profile = announce(&Profile::new(next, "{}", vec![TOPIC.into()], NOW).expect("profile"));
    let full = Table { capacity: 1, ..bob.clone() }.after(TOPIC, next_profile.clone(), NOW);
    let full_with_alice = Table { capacity: 1, ..bob.clone() }.after(TOPIC, genuine.clone(), NOW);
    c.add("a_listed_peer_of_a_full_topic", full_with_alice.offer(TOPIC, &newer, later), Accepted);
    // Checks skipped by design come before the signature: these forgeries are dropped unverified.
    c.add("order_echo_before_signature", echo.offer(TOPIC, &forged, NOW), Accepted);
    c.add("order_only_list_before_signature", only_next.offer(TOPIC, &forged, NOW), Accepted);
    c.add("order_joined_before_signature", elsewhere.offer(TOPIC, &forged, NOW), Accepted);
    let forged_old = announce(&edited(profile, |p| p.content = "{}".into()));
    c.add(
        "order_older_than_listed_before_signature",
        listed_newer.offer(TOPIC, &forged_old, later),
        Accepted,
    );

    // Withdrawals.
    let bye = withdrawal(&world.withdraw);
    let bye_at = world.withdraw.withdrawn_ms;
    c.add("alices_withdrawal", listed.offer(TOPIC, &bye, bye_at), Accepted);
    let same_time = withdrawal(&Withdraw::new(&world.alice, TOPIC, NOW));
    c.add("a_withdrawal_as_old_as_the_profile", listed.offer(TOPIC, &same_time, NOW), Accepted);
    let much_later = alice_profile(&[TOPIC], PROFILE_CONTENT, bye_at + 1);
    let relisted = bob.clone().after(TOPIC, announce(&much_later), bye_at + 1);
    c.add("a_withdrawal_older_than_the_profile", relisted.offer(TOPIC, &bye, bye_at + 1), Accepted);
    c.add("a_withdrawal_of_no_one_listed", bob.offer(TOPIC, &bye, bye_at), Accepted);
    // A neighbour relaying the profile it had before the withdrawal lists no one again.
    let withdrawn = listed.clone().after(TOPIC, bye.clone(), bye_at);
    c.add(
        "a_profile_from_before_its_authors_withdrawal",
        withdrawn.offer(TOPIC, &genuine, bye_at + 1),
        Fails("Stale", None),
    );
    let back = announce(&alice_profile(&[TOPIC], PROFILE_CONTENT, bye_at + 1));
    c.add("a_profile_after_its_authors_withdrawal", withdrawn.offer(TOPIC, &back, bye_at + 1), Accepted);
    let mut forged_bye = world.withdraw.clone();
    forged_bye.signature = next.sign(WITHDRAW_DOMAIN, &forged_bye.signed_bytes());
    let forged_bye = withdrawal(&forged_bye);
    c.add("order_listed_before_withdrawal_signature", bob.offer(TOPIC, &forged_bye, bye_at), Accepted);

    // Refused announces.
    c.add("forged_content", bob.offer(TOPIC, &forged, NOW), Fails("BadSignature", None));
    let next_key: PublicId = BOB_NEXT.id();
    let stolen = announce(&edited(profile, |p| p.author = next_key));
    c.add("another_author_on_alices_signature", bob.offer(TOPIC, &stolen, NOW), Fails("BadSignature", None));
    let flipped = announce(&edited(profile, |p| p.signature[0] ^= 1));
    c.add("signature_changed", bob.offer(TOPIC, &flipped, NOW), Fails("BadSignature", None));
    let wrong_domain =
        announce(&edited(profile, |p| p.signature = world.alice.sign(WITHDRAW_DOMAIN, &p.signed_bytes())));
    c.add("signed_in_the_withdraw_domain", bob.offer(TOPIC, &wrong_domain, NOW), Fails("BadSignature", None));
    let hinted = announce(&edited(profile, |p| p.hints.push("203.0.113.9:1".into())));
    c.add("a_hint_added", bob.offer(TOPIC, &hinted, NOW), Fails("BadSignature", None));
    c.add("replayed_into_another_topic", bob.offer("tea", &genuine, NOW), Fails("WrongTopic", None));
    let moved = announce(&edited(profile, |p| p.topics.push("tea".into())));
    c.add("another_topic_added", bob.offer("tea", &moved, NOW), Fails("BadSignature", None));
    c.add("from_the_future", bob.offer(TOPIC, &genuine, NOW - MAX_SKEW_MS - 1), Fails("FromTheFuture", None));
    c.add("stale", bob.offer(TOPIC, &genuine, stale_at + 1), Fails("Stale", None));
    c.add("full", full.offer(TOPIC, &genuine, NOW), Fails("Full", None));
    c.add("order_stale_before_signature", bob.offer(TOPIC, &forged, stale_at + 1), Fails("Stale", None));
    c.add("order_signature_before_topic", bob.offer("tea", &forged, NOW), Fails("BadSignature", None));
    c.add(
        "order_topic_before_clock",
        bob.offer("tea", &genuine, NOW - MAX_SKEW_MS - 1),
        Fails("WrongTopic", None),
    );
    c.add("order_signature_before_capacity", full.offer(TOPIC, &forged, NOW), Fails("BadSignature", None));

    // Refused withdrawals.
    let in_tea = bob.clone().after("tea", announce(&alice_profile(&["tea"], PROFILE_CONTENT, NOW)), NOW);
    let mut to_tea = world.withdraw.clone();
    to_tea.topic = "tea".into();
    c.add(
        "withdrawal_moved_to_another_topic",
        in_tea.offer("tea", &withdrawal(&to_tea), bye_at),
        Fails("BadSignature", None),
    );
    c.add(
        "withdrawal_replayed_into_another_topic",
        in_tea.offer("tea", &bye, bye_at),
        Fails("WrongTopic", None),
    );
    c.add("withdrawal_by_another_key", listed.offer(TOPIC, &forged_bye, bye_at), Fails("BadSignature", None));
    let mut redated = world.withdraw.clone();
    redated.withdrawn_ms += 1;
    c.add(
        "withdrawal_redated",
        listed.offer(TOPIC, &withdrawal(&redated), bye_at),
        Fails("BadSignature", None),
    );
    let mut profile_domain = world.withdraw.clone();
    profile_domain.signature =
        world.alice.sign(wopr_proto::discovery::PROFILE_DOMAIN, &profile_domain.signed_bytes());
    c.add(
        "withdrawal_signed_in_the_profile_domain",
        listed.offer(TOPIC, &withdrawal(&profile_domain), bye_at),
        Fails("BadSignature", None),
    );

    // Decoding (§14 layout and field rules).
    let malformed = |e| Fails(e, None);
    c.add("empty", bob.offer(TOPIC, &[], NOW), malformed("Malformed.Truncated"));
    c.add(
        "type_0",
        bob.offer(TOPIC, &[&[0], &genuine[1..]].concat(), NOW),
        malformed("Malformed.UnknownTag"),
    );
    c.add(
        "type_6",
        bob.offer(TOPIC, &[&[6], &genuine[1..]].concat(), NOW),
        malformed("Malformed.UnknownTag"),
    );
    c.add(
        "announce_truncated",
        bob.offer(TOPIC, &genuine[..genuine.len() - 1], NOW),
        malformed("Malformed.Truncated"),
    );
    c.add(
        "announce_trailing_byte",
        bob.offer(TOPIC, &[&genuine[..], &[0]].concat(), NOW),
        malformed("Malformed.TrailingBytes"),
    );
    c.add(
        "withdrawal_truncated",
        bob.offer(TOPIC, &bye[..bye.len() - 1], NOW),
        malformed("Malformed.Truncated"),
    );
    c.add(
        "withdrawal_trailing_byte",
        bob.offer(TOPIC, &[&bye[..], &[0]].concat(), NOW),
        malformed("Malformed.TrailingBytes"),
    );
    let over = [vec![1], vec![0; MAX_TOPIC_MESSAGE]].concat();
    c.add("over_4096_bytes", bob.offer(TOPIC, &over, NOW), malformed("TooLarge"));
    let big_profile = [vec![1], vec![0; MAX_PROFILE_BYTES + 1]].concat();
    c.add("profile_over_3968_bytes", bob.offer(TOPIC, &big_profile, NOW), malformed("TooLarge"));
    let topics = |n: usize| (0..n).map(|i| format!("t{i}")).collect::<Vec<_>>();
    let mut long_content = Writer::new();
    long_content
        .u8(1)
        .raw(ALICE.id().as_bytes())
        .raw(&[0; 32])
        .u32(u32::try_from(MAX_CONTENT + 1).expect("fits"));
    c.add(
        "content_of_2049_bytes",
        bob.offer(TOPIC, &long_content.into_bytes(), NOW),
        malformed("Malformed.TooLong"),
    );
    let not_utf8 = raw_profile(topics(1), vec![], "\u{e9}");
    let at = 1 + 64 + 4; // type, two keys, the content's length: its first byte
    let mut not_utf8 = not_utf8;
    not_utf8[at] = 0xff;
    c.add("content_not_utf8", bob.offer(TOPIC, &not_utf8, NOW), malformed("Malformed.InvalidUtf8"));
    c.add(
        "nine_topics",
        bob.offer(TOPIC, &raw_profile(topics(9), vec![], "{}"), NOW),
        malformed("Malformed.TooLong"),
    );
    c.add("no_topics", bob.offer(TOPIC, &raw_profile(vec![], vec![], "{}"), NOW), malformed("TopicCount"));
    c.add(
        "empty_topic_name",
        bob.offer(TOPIC, &raw_profile(vec![String::new()], vec![], "{}"), NOW),
        malformed("BadTopicName"),
    );
    let long_name = vec!["t".repeat(129)];
    c.add(
        "topic_name_of_129_bytes",
        bob.offer(TOPIC, &raw_profile(long_name, vec![], "{}"), NOW),
        malformed("Malformed.TooLong"),
    );
    c.add(
        "empty_hint",
        bob.offer(TOPIC, &raw_profile(topics(1), vec![String::new()], "{}"), NOW),
        malformed("BadHints"),
    );
    let nine_hints = vec!["h".to_string(); 9];
    c.add(
        "nine_hints",
        bob.offer(TOPIC, &raw_profile(topics(1), nine_hints, "{}"), NOW),
        malformed("Malformed.TooLong"),
    );
    let mut short_list = Writer::new();
    short_list.u8(1).raw(ALICE.id().as_bytes()).raw(&[0; 32]).str("{}").u16(8).u32(129).raw(&[0; 16]);
    c.add(
        "topic_count_larger_than_the_input",
        bob.offer(TOPIC, &short_list.into_bytes(), NOW),
        malformed("Malformed.Truncated"),
    );
    let mut long_topic = Writer::new();
    long_topic.u8(2).raw(ALICE.id().as_bytes()).u32(129);
    c.add(
        "withdrawal_topic_of_129_bytes",
        bob.offer(TOPIC, &long_topic.into_bytes(), NOW),
        malformed("Malformed.TooLong"),
    );

    // Shares (type 3): each profile is offered on its own, and one refused does not refuse the others.
    let share = |profiles: Vec<Profile>| TopicMessage::Share(Share { nonce: 7, profiles }).to_bytes();
    let next_p = Profile::new(next, "{}", vec![TOPIC.into()], NOW).expect("profile");
    let bobs_p = Profile::new(&world.bob, "{}", vec![TOPIC.into()], NOW).expect("profile");
    let forged_p = edited(profile, |p| p.content = r#"{"name":"FREE COINS"}"#.into());
    c.add(
        "a_share_of_two_profiles",
        bob.offer(TOPIC, &share(vec![profile.clone(), next_p.clone()]), NOW),
        Accepted,
    );
    c.add(
        "a_share_with_the_receivers_own_and_a_forged_profile",
        bob.offer(TOPIC, &share(vec![bobs_p.clone(), forged_p.clone(), next_p.clone()]), NOW),
        Accepted,
    );
    c.add(
        "a_share_of_a_listed_profile",
        listed.offer(TOPIC, &share(vec![profile.clone()]), NOW + 1),
        Accepted,
    );
    c.add("an_empty_share", bob.offer(TOPIC, &share(vec![]), NOW), Accepted);
    let stale_share = share(vec![profile.clone()]);
    c.add("a_share_of_a_stale_profile", bob.offer(TOPIC, &stale_share, stale_at + 1), Accepted);
    let two = share(vec![profile.clone(), next_p.clone()]);
    c.add("share_truncated", bob.offer(TOPIC, &two[..two.len() - 1], NOW), malformed("Malformed.Truncated"));
    c.add(
        "share_trailing_byte",
        bob.offer(TOPIC, &[&two[..], &[0]].concat(), NOW),
        malformed("Malformed.TrailingBytes"),
    );
    let no_topics = share(vec![edited(&next_p, |p| p.topics.clear())]);
    c.add("share_of_a_profile_without_topics", bob.offer(TOPIC, &no_topics, NOW), malformed("TopicCount"));
    let mut counted = Writer::new();
    counted.u8(3).u64(7).u16(2).raw(&next_p.to_bytes());
    c.add(
        "share_count_larger_than_the_input",
        bob.offer(TOPIC, &counted.into_bytes(), NOW),
        malformed("Malformed.Truncated"),
    );
    let mut many = Writer::new();
    many.u8(3).u64(7).u16(65);
    c.add("share_of_65_profiles", bob.offer(TOPIC, &many.into_bytes(), NOW), malformed("Malformed.TooLong"));

    // Friend requests and accepts posted in the topic (types 4, 5): the table lists no one for them.
    let posted_request = TopicMessage::FriendRequest(world.friend_request.clone()).to_bytes();
    let posted_accept = TopicMessage::FriendAccept(world.friend_accept.clone()).to_bytes();
    c.add("a_friend_request_posted_in_the_topic", bob.offer(TOPIC, &posted_request, NOW), Accepted);
    c.add("a_friend_accept_posted_in_the_topic", bob.offer(TOPIC, &posted_accept, NOW), Accepted);
    c.add(
        "friend_request_post_truncated",
        bob.offer(TOPIC, &posted_request[..posted_request.len() - 1], NOW),
        malformed("Friend.Malformed.Truncated"),
    );
    c.add(
        "friend_accept_post_trailing_byte",
        bob.offer(TOPIC, &[&posted_accept[..], &[0]].concat(), NOW),
        malformed("Friend.Malformed.TrailingBytes"),
    );
    c
}

pub fn connect_requests<'a>(world: &World, identities: &'a Value) -> Cases<'a> {
    let mut c = Cases::new("connect_request", identities);
    let (alice, bob) = (world.alice.public_id(), world.bob.public_id());
    let input = |env: &Envelope, recipient: &PublicId, remote: &PublicId, now_ms: u64| {
        json!({
            "envelope": hex::encode(env.to_bytes()),
            "recipient": name_of(recipient),
            "remote": name_of(remote),
            "now_ms": now_ms,
        })
    };
    let genuine = world.envelope("connect_request");
    let at = genuine.timestamp_ms;
    let request = match &genuine.message {
        Message::ConnectRequest(m) => m.clone(),
        _ => unreachable!("a connect-request"),
    };
    // A request alice signs over `edit`ed fields: a valid envelope around whatever she put in it.
    let resigned = |edit: &dyn Fn(&mut ConnectRequest)| {
        let mut m = request.clone();
        edit(&mut m);
        let mut env = Envelope::new(genuine.nonce, at, Message::ConnectRequest(m));
        env.sign(&world.alice, &bob).expect("sign");
        env
    };
    // The envelope changed after alice signed it.
    let altered = |edit: &dyn Fn(&mut ConnectRequest)| {
        let mut env = genuine.clone();
        if let Message::ConnectRequest(m) = &mut env.message {
            edit(m);
        }
        env
    };
    c.add("alices_request_to_bob", input(genuine, &bob, &alice, at), Accepted);
    c.add("with_a_day_old_profile", input(genuine, &bob, &alice, at + 86_400_000), Accepted);
    c.add("five_minutes_before_the_profile", input(genuine, &bob, &alice, NOW - MAX_SKEW_MS), Accepted);
    c.add("no_session_asked", input(&resigned(&|m| m.session = None), &bob, &alice, at), Accepted);

    let bad = Fails("BadSignature", INVALID);
    c.add("note_changed", input(&altered(&|m| m.note.push('!')), &bob, &alice, at), bad);
    c.add("topic_changed", input(&altered(&|m| m.topic = "tea".into()), &bob, &alice, at), bad);
    c.add("session_changed", input(&altered(&|m| m.session = Some("work".into())), &bob, &alice, at), bad);
    c.add("signed_for_another_recipient", input(genuine, &BOB_NEXT.id(), &alice, at), bad);
    c.add(
        "from_another_connection",
        input(genuine, &bob, &BOB_NEXT.id(), at),
        Fails("AuthorMismatch", Some(7)),
    );
    let bobs_profile =
        Profile::new(&world.bob, r#"{"name":"bob"}"#, vec![TOPIC.into()], NOW).expect("bob's profile");
    let not_hers = resigned(&|m| m.profile = bobs_profile.clone());
    c.add(
        "the_profile_of_another_key",
        input(&not_hers, &bob, &alice, at),
        Fails("Profile.BadSignature", INVALID),
    );
    let forged_profile = resigned(&|m| m.profile.content = r#"{"name":"alice","verified":true}"#.into());
    c.add(
        "a_forged_profile",
        input(&forged_profile, &bob, &alice, at),
        Fails("Profile.BadSignature", INVALID),
    );
    let tea_profile = alice_profile(&["tea"], PROFILE_CONTENT, NOW);
    let other_topic = resigned(&|m| m.profile = tea_profile.clone());
    c.add(
        "a_profile_for_another_topic",
        input(&other_topic, &bob, &alice, at),
        Fails("Profile.WrongTopic", INVALID),
    );
    c.add(
        "a_profile_from_the_future",
        input(genuine, &bob, &alice, NOW - MAX_SKEW_MS - 1),
        Fails("Profile.FromTheFuture", INVALID),
    );
    c.add(
        "order_signature_before_author",
        input(&altered(&|m| m.note.clear()), &bob, &BOB_NEXT.id(), at),
        bad,
    );
    c.add(
        "order_author_before_profile",
        input(&not_hers, &bob, &BOB_NEXT.id(), at),
        Fails("AuthorMismatch", Some(7)),
    );
    c.add(
        "order_envelope_before_profile",
        input(&altered(&|m| m.profile = bobs_profile.clone()), &bob, &alice, at),
        bad,
    );
    let raw = genuine.to_bytes();
    c.add(
        "truncated",
        json!({ "envelope": hex::encode(&raw[..raw.len() - 1]), "recipient": "bob", "remote": "alice", "now_ms": at }),
        Fails("Malformed.Truncated", INVALID),
    );
    c
}

/// An envelope header (nonce, timestamp, type) followed by `body`.
fn raw_envelope(kind: u8, body: impl FnOnce(&mut Writer)) -> Vec<u8> {
    let mut w = Writer::new();
    w.raw(&[0x50; 16]).u64(NOW).u8(kind);
    body(&mut w);
    w.into_bytes()
}

/// The decoding rules of types 10 to 13 (§7.2).
pub fn envelope_decoding<'a>(world: &World, identities: &'a Value) -> Cases<'a> {
    let mut c = Cases::new("envelope_decode", identities);
    let env = |b: Vec<u8>| json!({ "envelope": hex::encode(b) });
    let key = [0x77; 32];
    let sig = [0; 64];
    let profile = world.profile.to_bytes();
    let note = u32::try_from(MAX_CONNECT_NOTE + 1).expect("fits");
    let unknown = Fails("UnknownTag", INVALID);
    let too_long = Fails("TooLong", INVALID);
    let connect = |profile: &[u8], session_flag: u8| {
        raw_envelope(10, |w| {
            w.raw(&key).str(TOPIC).bytes(profile).u8(session_flag).str("hi").raw(&sig);
        })
    };
    c.add("connect_request_unsigned_decodes", env(connect(&profile, 0)), Accepted);
    c.add("connect_request_session_flag_2", env(connect(&profile, 2)), unknown);
    c.add(
        "connect_request_profile_trailing_byte",
        env(connect(&[&profile[..], &[0]].concat(), 0)),
        Fails("TrailingBytes", INVALID),
    );
    c.add(
        "connect_request_profile_truncated",
        env(connect(&profile[..profile.len() - 1], 0)),
        Fails("Truncated", INVALID),
    );
    let no_topics = Profile { topics: vec![], ..world.profile.clone() }.to_bytes();
    c.add("connect_request_profile_without_topics", env(connect(&no_topics, 0)), Fails("Invalid", INVALID));
    let empty_hint = Profile { hints: vec![String::new()], ..world.profile.clone() }.to_bytes();
    c.add(
        "connect_request_profile_with_an_empty_hint",
        env(connect(&empty_hint, 0)),
        Fails("Invalid", INVALID),
    );
    let over_profile = u32::try_from(MAX_PROFILE_BYTES + 1).expect("fits");
    c.add(
        "connect_request_profile_of_3969_bytes",
        env(raw_envelope(10, |w| {
            w.raw(&key).str(TOPIC).u32(over_profile);
        })),
        too_long,
    );
    c.add(
        "connect_request_topic_of_129_bytes",
        env(raw_envelope(10, |w| {
            w.raw(&key).u32(129);
        })),
        too_long,
    );
    c.add(
        "connect_request_session_of_256_bytes",
        env(raw_envelope(10, |w| {
            w.raw(&key).str(TOPIC).bytes(&profile).u8(1).u32(256);
        })),
        too_long,
    );
    c.add(
        "connect_request_note_of_1025_bytes",
        env(raw_envelope(10, |w| {
            w.raw(&key).str(TOPIC).bytes(&profile).u8(0).u32(note);
        })),
        too_long,
    );
    let signed = world.envelope("connect_request").to_bytes();
    c.add(
        "connect_request_trailing_byte",
        env([&signed[..], &[0]].concat()),
        Fails("TrailingBytes", INVALID),
    );
    c.add(
        "connect_request_without_its_signature",
        env(signed[..signed.len() - 64].to_vec()),
        Fails("Truncated", INVALID),
    );
    let response = |accepted: u8, count: u16, caps: u8, reason_len: u32| {
        raw_envelope(11, |w| {
            w.u8(accepted).u16(count);
            for _ in 0..count {
                w.str("s");
            }
            w.u8(caps).u32(reason_len);
        })
    };
    c.add("connect_response_accepted_with_nothing_decodes", env(response(1, 0, 0, 0)), Accepted);
    c.add("connect_response_refused_with_a_grant_decodes", env(response(0, 1, 3, 0)), Accepted);
    c.add("connect_response_accepted_flag_2", env(response(2, 0, 0, 0)), unknown);
    c.add("connect_response_accepted_flag_255", env(response(255, 0, 0, 0)), unknown);
    c.add("connect_response_capability_bit_2", env(response(1, 0, 4, 0)), unknown);
    c.add("connect_response_33_sessions", env(response(1, 33, 1, 0)), too_long);
    c.add("connect_response_reason_of_1025_bytes", env(response(1, 0, 1, note)), too_long);
    c.add("connect_response_reason_cut_short", env(response(1, 0, 1, 5)), Fails("Truncated", INVALID));
    let accepted = world.envelope("connect_response").to_bytes();
    c.add(
        "connect_response_trailing_byte",
        env([&accepted[..], &[0]].concat()),
        Fails("TrailingBytes", INVALID),
    );
    let friend = |kind: u8, inner: &[u8]| {
        raw_envelope(kind, |w| {
            w.bytes(inner);
        })
    };
    let request = world.friend_request.to_bytes();
    let accept = world.friend_accept.to_bytes();
    c.add(
        "friend_request_trailing_byte_inside",
        env(friend(12, &[&request[..], &[0]].concat())),
        Fails("TrailingBytes", INVALID),
    );
    c.add(
        "friend_request_trailing_byte_outside",
        env([friend(12, &request), vec![0]].concat()),
        Fails("TrailingBytes", INVALID),
    );
    let mut spaced = request.clone();
    spaced[32 + 4] = b' ';
    c.add("friend_request_name_with_a_space", env(friend(12, &spaced)), Fails("Invalid", INVALID));
    let over = u32::try_from(MAX_FRIEND_BYTES + 1).expect("fits");
    c.add(
        "friend_request_of_2401_bytes",
        env(raw_envelope(12, |w| {
            w.u32(over);
        })),
        too_long,
    );
    c.add("a_friend_request_as_type_13", env(friend(13, &request)), Fails("Truncated", INVALID));
    c.add(
        "friend_accept_truncated_inside",
        env(friend(13, &accept[..accept.len() - 1])),
        Fails("Truncated", INVALID),
    );
    c
}

/// Types 10 to 13 at `verify_from` (§7.3): only the connect-request is author-signed.
pub fn envelope_verification<'a>(world: &World, identities: &'a Value) -> Cases<'a> {
    let mut c = Cases::new("envelope_verify", identities);
    let input = |name: &str, recipient: &str, remote: &str| {
        json!({
            "envelope": hex::encode(world.envelope(name).to_bytes()),
            "recipient": recipient,
            "remote": remote,
        })
    };
    c.add("connect_request", input("connect_request", BOB.name, ALICE.name), Accepted);
    c.add("friend_request_from_any_key", input("friend_request", BOB.name, BOB_NEXT.name), Accepted);
    c.add("friend_accept_from_any_key", input("friend_accept", ALICE.name, BOB_NEXT.name), Accepted);
    c.add("connect_response_from_any_key", input("connect_response", ALICE.name, BOB_NEXT.name), Accepted);
    c.add(
        "connect_request_from_another_key",
        input("connect_request", BOB.name, BOB_NEXT.name),
        Fails("AuthorMismatch", Some(7)),
    );
    c
}
