//! The friend protocol over the network: auto-accept rules, the owner's accept, and forged or
//! unrelated messages refused.

mod common;

use std::time::Duration;

use common::TestNode;
use serde_json::json;
use wopr_p2p::FriendOutcome;
use wopr_proto::Encode;
use wopr_proto::discovery::{Profile, TopicMessage};
use wopr_proto::friend::{FriendAccept, FriendRequest};
use wopr_store::{Capability, friend_session_name};

async fn node(name: &str, bootstrap: &[String]) -> TestNode {
    common::discovery_node(bootstrap, &[("friend.name", json!(name))]).await
}

/// Two nodes that see each other in a topic (so each knows how to reach the other).
async fn pair() -> (TestNode, TestNode) {
    let a = node("alice", &[]).await;
    let b = node("bob", &[a.node.ticket()]).await;
    a.node.join("meet").await.unwrap();
    b.node.join("meet").await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while b.node.discovered(Some("meet"), false).is_empty()
        || a.node.discovered(Some("meet"), false).is_empty()
    {
        assert!(tokio::time::Instant::now() < deadline, "the two never met");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (a, b)
}

/// The state a friendship leaves on `me` for `friend` named `name`.
fn check_friendship(me: &TestNode, friend: &TestNode, name: &str, my_name: &str) {
    let doc = me.home.friends().load().unwrap();
    let f = doc.by_key(&friend.id()).expect("a friend record");
    assert_eq!(f.name, name);
    let session = friend_session_name(name, &friend.id()).unwrap();
    assert_eq!(f.session, session);
    assert!(me.home.sessions().get(&session).is_ok(), "the dedicated session exists");
    let access = me.home.access().load().unwrap();
    let grants: Vec<_> = access.grants.iter().filter(|g| g.peer_key == friend.id()).collect();
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0].sessions.iter().cloned().collect::<Vec<_>>(), vec![session.to_string()]);
    assert_eq!(grants[0].capabilities.iter().copied().collect::<Vec<_>>(), [Capability::Message]);
    let peers = me.home.peers().load().unwrap();
    let p = peers.peers.iter().find(|p| p.public_key == friend.id()).expect("a peers.json record");
    let theirs = friend_session_name(my_name, &me.id()).unwrap();
    assert_eq!(p.sessions.iter().cloned().collect::<Vec<_>>(), vec![theirs.to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auto_accept_rule_makes_friends_at_once_with_message_only_and_a_session_each() {
    let (a, b) = pair().await;
    a.home.friends().add_rule("bob|carol").unwrap();
    let outcome = b.node.friend_request(&a.id().short()).await.unwrap();
    let FriendOutcome::Accepted { friend } = outcome else { panic!("{outcome:?}") };
    assert_eq!(friend.public_key, a.id());
    check_friendship(&a, &b, "bob", "alice");
    check_friendship(&b, &a, "alice", "bob");
    assert!(a.home.friends().load().unwrap().by_key(&b.id()).unwrap().auto_accepted);
    // Each reaches only its session on the other, with `message`.
    let on_a = friend_session_name("bob", &b.id()).unwrap();
    b.node.log(&a.id().short(), on_a.as_str(), "hi alice").await.unwrap();
    assert_eq!(a.backend.logs.lock().unwrap()[0].session, on_a.as_str());
    let e = b.node.log(&a.id().short(), "main", "x").await.unwrap_err();
    assert_eq!(e.exit_code().code(), 7, "{e}");
    a.node.shutdown().await;
    b.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_rule_the_request_waits_for_the_owner_whose_accept_reaches_the_requester() {
    let (a, b) = pair().await;
    a.home.friends().add_rule("carol").unwrap();
    let outcome = b.node.friend_request(&a.id().short()).await.unwrap();
    assert!(
        matches!(&outcome, FriendOutcome::Pending { reason, .. } if reason.contains("owner")),
        "{outcome:?}"
    );
    assert!(a.home.friends().load().unwrap().friends.is_empty());
    assert_eq!(a.home.friends().load().unwrap().incoming.len(), 1);
    let accepted = a.node.friend_accept("bob").await.unwrap();
    assert_eq!(accepted.delivered, Ok(None), "delivered directly");
    assert!(accepted.line.starts_with("FRIEND_ACCEPT"));
    check_friendship(&a, &b, "bob", "alice");
    check_friendship(&b, &a, "alice", "bob");
    assert!(a.home.friends().load().unwrap().incoming.is_empty());
    assert!(b.home.friends().load().unwrap().outgoing.is_empty());
    a.node.shutdown().await;
    b.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepts_that_answer_no_request_of_ours_and_requests_for_another_key_are_refused() {
    let (a, b) = pair().await;
    // Bob accepts a request Alice never sent (made up from Alice's key): Alice refuses it.
    let carol = wopr_identity::Identity::from_seeds([4; 32], [5; 32], 0);
    let now = wopr_store::now_ms();
    let made_up = FriendRequest::new(&carol, "carol", vec![], b.id(), now).unwrap();
    let accept = FriendAccept::new(&b.identity(), "bob", vec![], &made_up, now).unwrap();
    let e = a.node.friend_take_accept_line(&accept.to_line()).await.unwrap_err();
    assert!(e.to_string().contains("addressed"), "mistargeted: {e}");
    // Bob accepts a request signed by Alice that she never sent (not pending): refused as well.
    let never_sent = FriendRequest::new(&a.identity(), "alice", vec![], b.id(), now).unwrap();
    let accept = FriendAccept::new(&b.identity(), "bob", vec![], &never_sent, now).unwrap();
    let e = a.node.friend_take_accept_line(&accept.to_line()).await.unwrap_err();
    assert!(e.to_string().contains("pending"), "no pending request: {e}");
    // Alice asks Bob, then a different accept (of another request) comes back: mismatched requestSig.
    a.home.friends().add_rule("nobody").unwrap();
    b.home.friends().add_rule("nobody").unwrap();
    a.node.friend_request(&b.id().short()).await.unwrap();
    let e = a.node.friend_take_accept_line(&accept.to_line()).await.unwrap_err();
    assert!(e.to_string().contains("request"), "mismatched requestSig: {e}");
    assert!(a.home.friends().load().unwrap().friends.is_empty());
    // A request addressed to someone else, pasted into Alice: refused as not for her.
    let for_carol = FriendRequest::new(&b.identity(), "bob", vec![], carol.public_id(), now).unwrap();
    let e = a.node.friend_accept(&for_carol.to_line()).await.unwrap_err();
    assert!(e.to_string().contains("friend request"), "{e}");
    // A stale pasted request is refused too.
    let stale = FriendRequest::new(&b.identity(), "bob", vec![], a.id(), now - 6 * 60_000).unwrap();
    assert!(a.node.friend_accept(&stale.to_line()).await.is_err());
    assert!(a.home.friends().load().unwrap().friends.is_empty());
    assert!(a.home.access().load().unwrap().grants.is_empty());
    a.node.shutdown().await;
    b.node.shutdown().await;
}

/// The next topic message of type `kind` a raw peer receives, decoded.
async fn next_of_type(receiver: &mut iroh_gossip::api::GossipReceiver, kind: u8) -> TopicMessage {
    use futures::StreamExt;
    let wait = async {
        while let Some(event) = receiver.next().await {
            if let Ok(iroh_gossip::api::Event::Received(m)) = event
                && m.content.first() == Some(&kind)
            {
                return TopicMessage::parse(&m.content).unwrap();
            }
        }
        panic!("the subscription ended");
    };
    tokio::time::timeout(Duration::from_secs(60), wait).await.expect("no such topic message arrived")
}

async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn friend_messages_go_through_the_topic_when_the_peer_is_not_reachable_directly() {
    // Rex is in the topic but serves gossip only: no direct connection to him carries WOPR messages.
    let a = node("alice", &[]).await;
    a.node.join("meet").await.unwrap();
    let rex = wopr_identity::Identity::generate();
    let (_router, rex_out, mut rex_in) = common::raw_gossip_peer(&a, &rex, "meet").await;
    let now = wopr_store::now_ms();
    let profile = Profile::new(&rex, r#"{"name":"rex"}"#, vec!["meet".into()], now).unwrap();
    rex_out.broadcast(TopicMessage::Announce(profile).to_bytes().into()).await.unwrap();
    until("alice lists rex", || !a.node.discovered(Some("meet"), false).is_empty()).await;

    // Alice asks Rex: the direct attempt fails, so the request is posted in the topic for him.
    let outcome = a.node.friend_request(&rex.public_id().short()).await.unwrap();
    let FriendOutcome::Posted { topic, line, .. } = outcome else { panic!("{outcome:?}") };
    assert_eq!(topic, "meet");
    let TopicMessage::FriendRequest(request) = next_of_type(&mut rex_in, 4).await else { unreachable!() };
    assert_eq!(request.to_line(), line);
    request.verify(&rex.public_id(), wopr_store::now_ms()).unwrap();
    // Rex accepts in the topic; Alice takes it (it answers her pending request) and they are friends.
    let accept = FriendAccept::new(&rex, "rex", vec![], &request, wopr_store::now_ms()).unwrap();
    rex_out.broadcast(TopicMessage::FriendAccept(accept).to_bytes().into()).await.unwrap();
    until("alice befriends rex", || a.home.friends().load().unwrap().by_key(&rex.public_id()).is_some())
        .await;
    assert!(a.home.friends().load().unwrap().outgoing.is_empty(), "the request is settled");

    // Rex asks Alice in the topic with no rule of hers matching: kept for her owner.
    let carl = wopr_identity::Identity::generate();
    let (_router2, carl_out, carl_in) = common::raw_gossip_peer(&a, &carl, "meet").await;
    tokio::spawn(common::drain(carl_in));
    let ask = FriendRequest::new(&carl, "carl", vec![], a.id(), wopr_store::now_ms()).unwrap();
    carl_out.broadcast(TopicMessage::FriendRequest(ask.clone()).to_bytes().into()).await.unwrap();
    until("carl's request waits for alice", || !a.home.friends().load().unwrap().incoming.is_empty()).await;
    // Her owner accepts: Carl serves no WOPR messages either, so the accept goes into the topic.
    let accepted = a.node.friend_accept("carl").await.unwrap();
    assert_eq!(accepted.delivered, Ok(Some("meet".to_string())));
    // A raw peer reads posts addressed to others too; Rex sees the accept meant for Carl.
    let TopicMessage::FriendAccept(answer) = next_of_type(&mut rex_in, 5).await else { unreachable!() };
    assert_eq!(answer.to, carl.public_id());
    answer.verify(&carl.public_id(), wopr_store::now_ms(), &ask).unwrap();

    // Posts Alice must not take: addressed to someone else (dropped unread), and forged (refused, audited).
    let for_rex = FriendRequest::new(&carl, "carl", vec![], rex.public_id(), wopr_store::now_ms()).unwrap();
    carl_out.broadcast(TopicMessage::FriendRequest(for_rex).to_bytes().into()).await.unwrap();
    let mut forged = FriendRequest::new(&carl, "carl", vec![], a.id(), wopr_store::now_ms() + 1).unwrap();
    forged.from.name = "mallory".into();
    carl_out.broadcast(TopicMessage::FriendRequest(forged).to_bytes().into()).await.unwrap();
    let audit = || a.home.audit().unwrap().list(None, None).unwrap();
    until("the forged post is audited", || {
        audit().iter().any(|e| {
            e.action == "friend-request" && e.reason.as_deref().is_some_and(|r| r.contains("signature"))
        })
    })
    .await;
    let doc = a.home.friends().load().unwrap();
    assert!(doc.incoming.is_empty(), "{:?}", doc.incoming);
    assert_eq!(doc.friends.len(), 2, "rex and carl only");
    a.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_friend_that_rotates_its_key_stays_a_friend_under_the_new_key() {
    let (a, b) = pair().await;
    a.home.friends().add_rule("bob").unwrap();
    let outcome = b.node.friend_request(&a.id().short()).await.unwrap();
    assert!(matches!(outcome, FriendOutcome::Accepted { .. }), "{outcome:?}");
    let before = a.home.friends().load().unwrap().by_key(&b.id()).cloned().unwrap();
    let old = b.id();
    let (_, record) = b.home.rotate_identity(wopr_identity::RotationReason::Scheduled).unwrap();
    let b = b.restart(None).await;
    let report = b.node.broadcast_rotation(&record).await.unwrap();
    assert_eq!(report.delivered, vec![a.id()]);
    let doc = a.home.friends().load().unwrap();
    let after = doc.by_key(&record.new_key).expect("the friend under its new key");
    assert_eq!((&after.name, &after.session), (&before.name, &before.session));
    assert_eq!(after.old_keys.iter().map(|o| o.key).collect::<Vec<_>>(), vec![old]);
    assert!(doc.by_key(&old).is_none());
    a.node.shutdown().await;
    b.node.shutdown().await;
}
