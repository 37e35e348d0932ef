//! Everything the vectors are made of, built once from the fixed inputs in [`crate::fixtures`]: the
//! handshake between alice (initiator) and bob (responder), the envelopes of a few requests and their
//! answers, two invites, bob's rotation to bob_next, alice's friend request to bob with bob's accept, and
//! discovery: alice's profile in the topic `coffee`, her withdrawal from it, her connect-request to bob.

use wopr_identity::{Identity, PublicId, RotationReason, RotationRecord};
use wopr_proto::ErrorCode;
use wopr_proto::discovery::{Profile, Withdraw};
use wopr_proto::friend::{FriendAccept, FriendRequest};
use wopr_proto::handshake::{
    HandshakeMessage, HandshakeRandom, Hello, HelloAck, Initiator, Session, SessionKeys, derive_keys,
    respond, transcript_hash,
};
use wopr_proto::invite::{Capabilities, InviteToken, NewInvite};
use wopr_proto::message::{Claim, ConnectRequest, DoneStatus, Envelope, ErrorMessage, Inject, Log, Message};
use x25519_dalek::{PublicKey, StaticSecret};

use crate::fixtures::{ALICE, BOB, BOB_NEXT, INITIATOR_RANDOM, NOW, RESPONDER_RANDOM};

/// One envelope of the vectors: its name, the envelope, and the recipient it is signed for (if signed).
pub struct NamedEnvelope {
    pub name: &'static str,
    pub envelope: Envelope,
    pub recipient: Option<PublicId>,
}

/// A request stream: its QUIC id and its envelopes in order, each with the direction it travels.
pub struct StreamPlan {
    pub id: u64,
    pub frames: Vec<(&'static str, bool)>, // (envelope name, true = initiator to responder)
}

pub struct World {
    pub alice: Identity,
    pub bob: Identity,
    pub bob_next: Identity,
    pub hello: Hello,
    pub ack: HelloAck,
    pub transcript_hash: [u8; 32],
    pub shared: [u8; 32],
    pub keys: SessionKeys,
    pub alice_session: Session,
    pub bob_session: Session,
    pub envelopes: Vec<NamedEnvelope>,
    pub streams: Vec<StreamPlan>,
    /// alice's invite for bob (to mySession, inject, with an address hint).
    pub invite: InviteToken,
    /// bob's invite for alice, which alice claims in the `claim` envelope.
    pub claim_token: InviteToken,
    pub rotation: RotationRecord,
    /// alice's friend request to bob (two hints, one that the line form must escape), dated `NOW`.
    pub friend_request: FriendRequest,
    /// bob's accept of it, a second later.
    pub friend_accept: FriendAccept,
    /// alice's profile in `coffee`, dated `NOW`, with one address hint.
    pub profile: Profile,
    /// alice leaves `coffee` 30 s later.
    pub withdraw: Withdraw,
}

/// The topic of the discovery vectors.
pub const TOPIC: &str = "coffee";
/// alice's profile content.
pub const PROFILE_CONTENT: &str = r#"{"name":"alice","skills":["rust","review"]}"#;
/// When alice withdraws, after `NOW`.
pub const WITHDRAW_AFTER_MS: u64 = 30_000;

/// alice's profile for `topics`, dated `at`, with her hint (what her node announces).
pub fn alice_profile(topics: &[&str], content: &str, at: u64) -> Profile {
    let topics = topics.iter().map(|t| t.to_string()).collect();
    Profile::with_hints(&ALICE.identity(), content, topics, vec!["127.0.0.1:7438".into()], at)
        .expect("profile")
}

pub fn random(r: ([u8; 32], [u8; 32])) -> HandshakeRandom {
    HandshakeRandom::new(r.0, r.1)
}

/// alice's handshake state and Hello, as in the vectors (alice dials bob at `NOW`).
pub fn alice_starts() -> (Initiator, Hello) {
    Initiator::start(&ALICE.identity(), BOB.id(), random(INITIATOR_RANDOM), NOW)
}

impl World {
    pub fn build() -> World {
        let (alice, bob, bob_next) = (ALICE.identity(), BOB.identity(), BOB_NEXT.identity());
        let (init, hello) = alice_starts();
        let (ack, bob_session) =
            respond(&bob, &alice.public_id(), &hello, random(RESPONDER_RANDOM), NOW + 1).expect("respond");
        let alice_session = init.finish(&HandshakeMessage::HelloAck(ack.clone()), NOW + 2).expect("finish");
        let th = transcript_hash(&hello, &ack);
        assert_eq!(alice_session.transcript_hash(), &th);
        assert_eq!(bob_session.transcript_hash(), &th);
        let shared =
            StaticSecret::from(INITIATOR_RANDOM.0).diffie_hellman(&PublicKey::from(ack.ephemeral)).to_bytes();
        let keys = derive_keys(&shared, &th);

        let mut invite =
            NewInvite::new(bob.public_id(), vec!["mySession".into()], Capabilities::INJECT, NOW, [0x30; 16]);
        invite.hints = vec!["127.0.0.1:7438".into()];
        let invite = invite.sign(&alice).expect("invite");
        let claim_token = NewInvite::new(
            alice.public_id(),
            vec!["mySession".into(), "work:notes".into()],
            Capabilities::MESSAGE.union(Capabilities::INJECT),
            NOW,
            [0x31; 16],
        )
        .sign(&bob)
        .expect("invite");
        let rotation = RotationRecord::new(&bob, &bob_next, RotationReason::Scheduled, NOW);
        rotation.verify().expect("rotation verifies");

        let friend_request = FriendRequest::new(
            &alice,
            "alice",
            vec!["127.0.0.1:7438".into(), "relay https://relay.example/?a=1,b=2".into()],
            bob.public_id(),
            NOW,
        )
        .expect("friend request");
        let friend_accept =
            FriendAccept::new(&bob, "bob", vec!["127.0.0.1:7439".into()], &friend_request, NOW + 1000)
                .expect("friend accept");

        let profile = alice_profile(&[TOPIC], PROFILE_CONTENT, NOW);
        let withdraw = Withdraw::new(&alice, TOPIC, NOW + WITHDRAW_AFTER_MS);

        let me = bob.public_id();
        let mut envelopes = Vec::new();
        let mut signed = |name, nonce: u8, at: u64, message| {
            let mut envelope = Envelope::new([nonce; 16], NOW + at, message);
            envelope.sign(&alice, &me).expect("sign");
            envelopes.push(NamedEnvelope { name, envelope, recipient: Some(me) });
        };
        signed("inject", 0x10, 3, Message::Inject(Inject::new("mySession", "hello", 0)));
        signed("log", 0x11, 7, Message::Log(Log::new("mySession", "a note, no answer needed")));
        signed("claim", 0x12, 9, Message::Claim(Claim::new(claim_token.clone())));
        signed("inject_refused", 0x13, 11, Message::Inject(Inject::new("otherSession", "are you there?", 1)));
        let note = "Saw you in coffee; may I send you a patch to review?";
        let connect = ConnectRequest::new(TOPIC, profile.clone(), Some("review".into()), note);
        signed("connect_request", 0x14, 17, Message::ConnectRequest(connect));
        let mut plain = |name, nonce: u8, at: u64, message| {
            envelopes.push(NamedEnvelope {
                name,
                envelope: Envelope::new([nonce; 16], NOW + at, message),
                recipient: None,
            });
        };
        let done = |status| Message::InjectDone { status };
        let error = |code, message: &str, retry_after_ms| {
            Message::Error(ErrorMessage { code, message: message.into(), retry_after_ms })
        };
        plain("inject_delta", 0x20, 4, Message::InjectDelta { text: "Hi!".into() });
        plain("inject_delta_2", 0x21, 5, Message::InjectDelta { text: " Grüße 👋".into() });
        plain("inject_done_completed", 0x22, 6, done(DoneStatus::Completed));
        plain("inject_done_logged", 0x23, 8, done(DoneStatus::Logged));
        plain(
            "claim_accepted",
            0x24,
            10,
            Message::ClaimAccepted {
                sessions: claim_token.sessions.clone(),
                capabilities: claim_token.capabilities,
            },
        );
        plain(
            "error_unauthorized",
            0x25,
            12,
            error(ErrorCode::Unauthorized, "no grant for otherSession", None),
        );
        plain(
            "error_rate_limited",
            0x26,
            13,
            error(ErrorCode::RateLimited, "inject limit 30/minute; retry in 12 s", Some(12_000)),
        );
        plain("tool_event", 0x27, 14, Message::ToolEvent { name: "shell".into(), detail: "ls -la".into() });
        plain("inject_done_failed", 0x28, 15, done(DoneStatus::Failed));
        plain("inject_done_cancelled", 0x29, 16, done(DoneStatus::Cancelled));
        plain("rotation", 0x40, 0, Message::Rotation(rotation.clone()));
        plain(
            "connect_response",
            0x2a,
            18,
            Message::ConnectResponse {
                accepted: true,
                sessions: vec![format!("discover:{}", alice.public_id().short())],
                capabilities: Capabilities::MESSAGE,
                reason: "accepted automatically".into(),
            },
        );
        plain(
            // How a node answers a friend request it keeps for its owner (a refused connect-request is
            // answered with an `Error`).
            "friend_request_pending",
            0x2b,
            19,
            Message::ConnectResponse {
                accepted: false,
                sessions: vec![],
                capabilities: Capabilities::default(),
                reason: "request received; it waits for the owner to accept it".into(),
            },
        );
        plain("friend_request", 0x15, 20, Message::FriendRequest(friend_request.clone()));
        plain("friend_accept", 0x2c, 21, Message::FriendAccept(friend_accept.clone()));

        // What wopr-p2p does: stream 0 carries the handshake, every request has a client stream of its own.
        let stream = |id, frames| StreamPlan { id, frames };
        let streams = vec![
            stream(
                4,
                vec![
                    ("inject", true),
                    ("inject_delta", false),
                    ("inject_delta_2", false),
                    ("inject_done_completed", false),
                ],
            ),
            stream(8, vec![("log", true), ("inject_done_logged", false)]),
            stream(12, vec![("claim", true), ("claim_accepted", false)]),
            stream(16, vec![("inject_refused", true), ("error_unauthorized", false)]),
            stream(20, vec![("connect_request", true), ("connect_response", false)]),
            stream(24, vec![("friend_request", true), ("friend_accept", false)]),
        ];

        World {
            alice,
            bob,
            bob_next,
            hello,
            ack,
            transcript_hash: th,
            shared,
            keys,
            alice_session,
            bob_session,
            envelopes,
            streams,
            invite,
            claim_token,
            rotation,
            friend_request,
            friend_accept,
            profile,
            withdraw,
        }
    }

    pub fn envelope(&self, name: &str) -> &Envelope {
        &self
            .envelopes
            .iter()
            .find(|e| e.name == name)
            .unwrap_or_else(|| panic!("no envelope {name}"))
            .envelope
    }
}
