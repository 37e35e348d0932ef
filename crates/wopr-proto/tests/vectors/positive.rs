//! `docs/vectors/v3.json`: every structure of PROTOCOL.md built from the fixed inputs, byte for byte.

use serde_json::{Value, json};
use wopr_identity::{RotationRecord, domain_bytes};
use wopr_proto::ErrorCode;
use wopr_proto::channel::{Direction, OpeningKey, SealingKey};
use wopr_proto::codec::Encode;
use wopr_proto::discovery::{TopicMessage, topic_id};
use wopr_proto::frame::encode_frame;
use wopr_proto::handshake::{HandshakeError, Reject};
use wopr_proto::message::{DoneStatus, Message};

use crate::fixtures::{FIXTURES, INITIATOR_RANDOM, NOW, RESPONDER_RANDOM, name_of};
use crate::world::{NamedEnvelope, World};

const DOMAINS: [&str; 10] = [
    "handshake hello",
    "handshake ack",
    "transcript",
    "message",
    "invite",
    "rotation",
    "friend request",
    "friend accept",
    "profile",
    "withdraw",
];

pub fn generate(world: &World, accepted: Vec<Value>) -> Value {
    json!({
        "about": "WOPR protocol v3 test vectors; see docs/PROTOCOL.md section 13. All byte strings are lowercase hex.",
        "now_ms": NOW,
        "identities": identities(),
        "domains": DOMAINS.iter().map(|d| json!({
            "domain": d,
            "prefix": hex::encode(domain_bytes(d, b"")),
        })).collect::<Vec<_>>(),
        "handshake": handshake(world),
        "sealed_frames": connection_frames(world),
        "streams": streams(world),
        "envelopes": world.envelopes.iter().map(envelope_vector).collect::<Vec<_>>(),
        "invite": {
            "issuer": "alice",
            "subject": "bob",
            "sessions": world.invite.sessions,
            "capabilities": world.invite.capabilities.bits(),
            "expires_ms": world.invite.expires_ms,
            "nonce": hex::encode(world.invite.nonce),
            "hints": world.invite.hints,
            "signed_bytes": hex::encode(world.invite.signed_bytes()),
            "token": hex::encode(world.invite.to_bytes()),
            "uri": world.invite.to_uri(),
        },
        "rotation": {
            "old": "bob",
            "new": "bob_next",
            "reason": world.rotation.reason.code(),
            "timestamp_ms": world.rotation.timestamp,
            "signed_bytes": hex::encode(world.rotation.signed_bytes()),
            "record_json": serde_json::to_value(&world.rotation).expect("json"),
            "record_json_text": serde_json::to_string(&world.rotation).expect("json"),
            "envelope": hex::encode(world.envelope("rotation").to_bytes()),
        },
        "friend": friend(world),
        "discovery": discovery(world),
        "accepted": accepted,
    })
}

/// alice's friend request to bob and bob's accept (§15): fields, signed bytes, encodings and lines.
fn friend(w: &World) -> Value {
    let (req, acc) = (&w.friend_request, &w.friend_accept);
    json!({
        "request": {
            "to": name_of(&req.to),
            "from": name_of(&req.from.key),
            "name": req.from.name,
            "hints": req.from.hints,
            "ts_ms": req.ts_ms,
            "signed_bytes": hex::encode(req.signed_bytes()),
            "bytes": hex::encode(req.to_bytes()),
            "line": req.to_line(),
        },
        "accept": {
            "to": name_of(&acc.to),
            "from": name_of(&acc.from.key),
            "name": acc.from.name,
            "hints": acc.from.hints,
            "ts_ms": acc.ts_ms,
            "signed_bytes": hex::encode(acc.signed_bytes()),
            "bytes": hex::encode(acc.to_bytes()),
            "line": acc.to_line(),
        },
    })
}

const TOPIC_NAMES: [&str; 2] = ["coffee", "tea"];

/// §14: topic ids, alice's profile in `coffee` and its announce, her withdrawal.
fn discovery(w: &World) -> Value {
    let (p, x) = (&w.profile, &w.withdraw);
    json!({
        "topic_ids": TOPIC_NAMES.iter().map(|name| json!({
            "name": name,
            "id": hex::encode(topic_id(name)),
        })).collect::<Vec<_>>(),
        "profile": {
            "author": name_of(&p.author),
            "encrypt_pub": hex::encode(p.encrypt_pub),
            "content": p.content,
            "topics": p.topics,
            "hints": p.hints,
            "updated_ms": p.updated_ms,
            "signed_bytes": hex::encode(p.signed_bytes()),
            "bytes": hex::encode(p.to_bytes()),
            "announce": hex::encode(TopicMessage::Announce(p.clone()).to_bytes()),
        },
        "withdraw": {
            "author": name_of(&x.author),
            "topic": x.topic,
            "withdrawn_ms": x.withdrawn_ms,
            "signed_bytes": hex::encode(x.signed_bytes()),
            "bytes": hex::encode(TopicMessage::Withdraw(x.clone()).to_bytes()),
        },
    })
}

pub fn identities() -> Vec<Value> {
    FIXTURES
        .iter()
        .map(|f| {
            let id = f.identity();
            let mut clamped = f.x25519_secret;
            clamped[0] &= 248;
            clamped[31] &= 127;
            clamped[31] |= 64;
            json!({
                "name": f.name,
                "ed25519_seed": hex::encode(f.ed25519_seed),
                "x25519_secret": hex::encode(f.x25519_secret),
                "x25519_secret_clamped": hex::encode(clamped),
                "public_key": id.public_id().to_hex(),
                "encrypt_pub": hex::encode(id.encrypt_pub()),
                "short_id": id.public_id().short(),
            })
        })
        .collect()
}

fn handshake(w: &World) -> Value {
    let (i2r, r2i) = (Direction::InitiatorToResponder, Direction::ResponderToInitiator);
    let rejects = [
        HandshakeError::NoCommonVersion { offered: vec![1, 2] }.to_reject(),
        HandshakeError::BadSignature.to_reject(),
        HandshakeError::SignerMismatch { expected: w.alice.public_id(), signer: w.bob_next.public_id() }
            .to_reject(),
        Reject { code: ErrorCode::RateLimited, message: "request budget 120/minute; retry in 12 s".into() },
    ];
    json!({
        "initiator": "alice",
        "responder": "bob",
        "versions": w.hello.versions,
        "initiator_ephemeral_secret": hex::encode(INITIATOR_RANDOM.0),
        "initiator_nonce": hex::encode(INITIATOR_RANDOM.1),
        "hello_timestamp_ms": w.hello.timestamp_ms,
        "responder_ephemeral_secret": hex::encode(RESPONDER_RANDOM.0),
        "responder_nonce": hex::encode(RESPONDER_RANDOM.1),
        "ack_timestamp_ms": w.ack.timestamp_ms,
        "initiator_ephemeral_public": hex::encode(w.hello.ephemeral),
        "responder_ephemeral_public": hex::encode(w.ack.ephemeral),
        "hello_signed_bytes": hex::encode(w.hello.signed_bytes(&w.bob.public_id())),
        "hello": hex::encode(w.hello.to_bytes()),
        "hello_frame": hex::encode(encode_frame(&w.hello.to_bytes()).expect("frame")),
        "ack_signed_bytes": hex::encode(w.ack.signed_bytes(&w.hello)),
        "ack": hex::encode(w.ack.to_bytes()),
        "transcript_hash": hex::encode(w.transcript_hash),
        "shared_secret": hex::encode(w.shared),
        "key_i2r": hex::encode(*w.keys.connection_key(i2r)),
        "key_r2i": hex::encode(*w.keys.connection_key(r2i)),
        "stream_4_key_i2r": hex::encode(*w.keys.stream_key(i2r, 4)),
        "stream_4_key_r2i": hex::encode(*w.keys.stream_key(r2i, 4)),
        "rejects": rejects.iter().map(|r| json!({
            "code": r.code.as_u8(),
            "message": r.message,
            "bytes": hex::encode(r.to_bytes()),
        })).collect::<Vec<_>>(),
    })
}

/// Frames under the connection keys (`Session::channel`): specified, though wopr-p2p never sends them.
fn connection_frames(w: &World) -> Value {
    let (i2r, r2i) = (Direction::InitiatorToResponder, Direction::ResponderToInitiator);
    let mut a = SealingKey::new(&w.keys.connection_key(i2r), i2r.label());
    let mut b = SealingKey::new(&w.keys.connection_key(r2i), r2i.label());
    let inject = w.envelope("inject");
    let delta = w.envelope("inject_delta");
    json!([
        {
            "direction": "i2r",
            "counter": 0,
            "envelope": "inject",
            "plaintext_envelope": hex::encode(inject.to_bytes()),
            "envelope_signed_bytes": hex::encode(inject.signed_bytes(&w.bob.public_id()).expect("signed")),
            "frame": hex::encode(a.seal_frame(&inject.to_bytes()).expect("seal")),
        },
        {
            "direction": "r2i",
            "counter": 0,
            "envelope": "inject_delta",
            "plaintext_envelope": hex::encode(delta.to_bytes()),
            "frame": hex::encode(b.seal_frame(&delta.to_bytes()).expect("seal")),
        },
    ])
}

/// The request streams as wopr-p2p sends them: keys from `Session::stream_channel`, counters per direction.
fn streams(w: &World) -> Value {
    let (i2r, r2i) = (Direction::InitiatorToResponder, Direction::ResponderToInitiator);
    // Sessions hand out each stream's keys once, so build fresh copies of both ends for the vectors.
    let mut world = World::build();
    let mut out = Vec::new();
    for plan in &w.streams {
        let (mut a_seal, mut a_open) = world.alice_session.stream_channel(plan.id).expect("alice keys");
        let (mut b_seal, mut b_open) = world.bob_session.stream_channel(plan.id).expect("bob keys");
        // The session's keys are the documented key schedule.
        let mut by_hand = SealingKey::new(&w.keys.stream_key(i2r, plan.id), &i2r.stream_label(plan.id));
        let mut frames = Vec::new();
        let (mut sent_i2r, mut sent_r2i) = (0u64, 0u64);
        for (name, initiator_sends) in &plan.frames {
            let plain = w.envelope(name).to_bytes();
            let (frame, opened, direction, counter) = if *initiator_sends {
                let frame = a_seal.seal_frame(&plain).expect("seal");
                assert_eq!(by_hand.seal_frame(&plain).expect("seal"), frame);
                let opened = open_frame(&mut b_open, &frame);
                sent_i2r += 1;
                (frame, opened, "i2r", sent_i2r - 1)
            } else {
                let frame = b_seal.seal_frame(&plain).expect("seal");
                let opened = open_frame(&mut a_open, &frame);
                sent_r2i += 1;
                (frame, opened, "r2i", sent_r2i - 1)
            };
            assert_eq!(opened, plain, "the other end opens what was sealed");
            frames.push(json!({
                "direction": direction,
                "counter": counter,
                "envelope": name,
                "frame": hex::encode(frame),
            }));
        }
        out.push(json!({
            "stream_id": plan.id,
            "key_i2r": hex::encode(*w.keys.stream_key(i2r, plan.id)),
            "key_r2i": hex::encode(*w.keys.stream_key(r2i, plan.id)),
            "aad_i2r": hex::encode(i2r.stream_label(plan.id)),
            "aad_r2i": hex::encode(r2i.stream_label(plan.id)),
            "frames": frames,
        }));
    }
    world.alice_session.stream_channel(4).expect_err("a stream's keys are handed out once");
    Value::Array(out)
}

fn open_frame(key: &mut OpeningKey, frame: &[u8]) -> Vec<u8> {
    key.open(wopr_proto::frame::decode_frame(frame).expect("frame")).expect("opens")
}

fn envelope_vector(e: &NamedEnvelope) -> Value {
    let env = &e.envelope;
    let mut v = json!({
        "name": e.name,
        "type": env.message.type_byte(),
        "nonce": hex::encode(env.nonce),
        "timestamp_ms": env.timestamp_ms,
        "message": message_fields(&env.message),
        "envelope": hex::encode(env.to_bytes()),
    });
    if let Some(recipient) = &e.recipient {
        v["recipient"] = json!(name_of(recipient));
        v["signed_bytes"] = json!(hex::encode(env.signed_bytes(recipient).expect("signed type")));
    }
    v
}

/// The fields of a message, as §7.2 names them; keys of the vectors' identities by name.
pub fn message_fields(m: &Message) -> Value {
    match m {
        Message::Inject(i) => json!({
            "author": name_of(&i.author),
            "session": i.session,
            "text": i.text,
            "hop_count": i.hop_count,
            "signature": hex::encode(i.signature),
        }),
        Message::Log(l) => json!({
            "author": name_of(&l.author),
            "session": l.session,
            "text": l.text,
            "signature": hex::encode(l.signature),
        }),
        Message::InjectDelta { text } => json!({ "text": text }),
        Message::InjectDone { status } => json!({ "status": match status {
            DoneStatus::Completed => 0,
            DoneStatus::Logged => 1,
            DoneStatus::Failed => 2,
            DoneStatus::Cancelled => 3,
        } }),
        Message::ToolEvent { name, detail } => json!({ "name": name, "detail": detail }),
        Message::Claim(c) => json!({
            "author": name_of(&c.author),
            "token": hex::encode(c.token.to_bytes()),
            "signature": hex::encode(c.signature),
        }),
        Message::ClaimAccepted { sessions, capabilities } => {
            json!({ "sessions": sessions, "capabilities": capabilities.bits() })
        }
        Message::Rotation(r) => rotation_fields(r),
        Message::Error(e) => json!({
            "code": e.code.as_u8(),
            "message": e.message,
            "retry_after_ms": e.retry_after_ms,
        }),
        Message::ConnectRequest(c) => json!({
            "author": name_of(&c.author),
            "topic": c.topic,
            "profile": hex::encode(c.profile.to_bytes()),
            "session": c.session,
            "note": c.note,
            "signature": hex::encode(c.signature),
        }),
        Message::FriendRequest(f) => json!({ "request": hex::encode(f.to_bytes()) }),
        Message::FriendAccept(f) => json!({ "accept": hex::encode(f.to_bytes()) }),
        Message::ConnectResponse { accepted, sessions, capabilities, reason } => json!({
            "accepted": accepted,
            "sessions": sessions,
            "capabilities": capabilities.bits(),
            "reason": reason,
        }),
    }
}

fn rotation_fields(r: &RotationRecord) -> Value {
    json!({
        "old_key": name_of(&r.old_key),
        "new_key": name_of(&r.new_key),
        "new_encrypt_pub": hex::encode(r.new_encrypt_pub),
        "timestamp_ms": r.timestamp,
        "reason": r.reason.code(),
        "old_sig": hex::encode(r.old_sig),
        "new_sig": hex::encode(r.new_sig),
    })
}
