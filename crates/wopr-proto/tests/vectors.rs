//! Test vectors for protocol v3, generated from fixed seeds and compared with `docs/vectors/v3.json`.
//!
//! Everything here is deterministic: fixed identity seeds, fixed ephemeral secrets and nonces, a fixed
//! clock. Ed25519 signatures and AES-GCM are deterministic too, so the bytes never change unless the
//! protocol does. To regenerate after an intended change: `WOPR_WRITE_VECTORS=1 cargo test -p wopr-proto
//! --test vectors`, then review the diff of the JSON file and `docs/PROTOCOL.md`.

use std::path::PathBuf;
use std::sync::OnceLock;

use serde_json::{Value, json};
use wopr_identity::{Identity, RotationReason, RotationRecord};
use wopr_proto::channel::{Direction, OpeningKey, SealingKey};
use wopr_proto::codec::{Decode, Encode};
use wopr_proto::frame::{decode_frame, encode_frame};
use wopr_proto::handshake::{
    HandshakeMessage, HandshakeRandom, Initiator, derive_keys, respond, transcript_hash,
};
use wopr_proto::invite::{Capabilities, InviteToken, NewInvite, verify_claim};
use wopr_proto::message::{Envelope, Inject, Message};
use x25519_dalek::{PublicKey, StaticSecret};

const NOW: u64 = 1_700_000_000_000;
const ALICE: ([u8; 32], [u8; 32]) = ([0xa1; 32], [0xa2; 32]);
const BOB: ([u8; 32], [u8; 32]) = ([0xb1; 32], [0xb2; 32]);
const BOB_NEXT: ([u8; 32], [u8; 32]) = ([0xc1; 32], [0xc2; 32]);
const INITIATOR_RANDOM: ([u8; 32], [u8; 32]) = ([0xe1; 32], [0xe2; 32]);
const RESPONDER_RANDOM: ([u8; 32], [u8; 32]) = ([0xf1; 32], [0xf2; 32]);

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/vectors/v3.json")
}

fn identity(name: &str, seeds: ([u8; 32], [u8; 32])) -> (Identity, Value) {
    let id = Identity::from_seeds(seeds.0, seeds.1, NOW);
    let v = json!({
        "name": name,
        "ed25519_seed": hex::encode(seeds.0),
        "x25519_secret": hex::encode(seeds.1),
        "public_key": id.public_id().to_hex(),
        "encrypt_pub": hex::encode(id.encrypt_pub()),
        "short_id": id.public_id().short(),
    });
    (id, v)
}

fn generate() -> Value {
    let (alice, alice_v) = identity("alice", ALICE);
    let (bob, bob_v) = identity("bob", BOB);
    let (bob_next, bob_next_v) = identity("bob_next", BOB_NEXT);

    // Handshake: alice dials bob.
    let random = |(s, n): ([u8; 32], [u8; 32])| HandshakeRandom::new(s, n);
    let (init, hello) = Initiator::start(&alice, bob.public_id(), random(INITIATOR_RANDOM), NOW);
    let (ack, mut bob_session) =
        respond(&bob, &alice.public_id(), &hello, random(RESPONDER_RANDOM), NOW + 1).expect("respond");
    let ack_msg = HandshakeMessage::HelloAck(ack.clone());
    let mut alice_session = init.finish(&ack_msg, NOW + 2).expect("finish");
    let th = transcript_hash(&hello, &ack);
    assert_eq!(alice_session.transcript_hash(), &th);
    assert_eq!(bob_session.transcript_hash(), &th);

    let shared =
        StaticSecret::from(INITIATOR_RANDOM.0).diffie_hellman(&PublicKey::from(ack.ephemeral)).to_bytes();
    let keys = derive_keys(&shared, &th);
    let (i2r, r2i) = (Direction::InitiatorToResponder, Direction::ResponderToInitiator);

    // Sealed frames: a signed inject from alice, then a streamed reply from bob.
    let mut inject =
        Envelope::new([0x10; 16], NOW + 3, Message::Inject(Inject::new("mySession", "hello", 0)));
    inject.sign(&alice, &bob.public_id()).expect("sign");
    let delta = Envelope::new([0x20; 16], NOW + 4, Message::InjectDelta { text: "Hi!".into() });
    let (mut a_seal, _) = alice_session.channel().expect("alice keys");
    let (mut b_seal, _) = bob_session.channel().expect("bob keys");
    let frame0 = a_seal.seal_frame(&inject.to_bytes()).expect("seal");
    let frame1 = b_seal.seal_frame(&delta.to_bytes()).expect("seal");
    // The session's keys are exactly the documented key schedule.
    let mut by_hand = SealingKey::new(&keys.connection_key(i2r), i2r.label());
    assert_eq!(by_hand.seal_frame(&inject.to_bytes()).expect("seal"), frame0);

    // Invite: alice invites bob to mySession with the inject capability.
    let mut new =
        NewInvite::new(bob.public_id(), vec!["mySession".into()], Capabilities::INJECT, NOW, [0x30; 16]);
    new.hints = vec!["127.0.0.1:7438".into()];
    let token = new.sign(&alice).expect("invite");
    let uri = token.to_uri();
    let parsed = InviteToken::parse(&uri, NOW).expect("parse");
    verify_claim(&parsed, &alice.public_id(), &bob.public_id(), NOW).expect("claim");

    // Rotation: bob moves to bob_next.
    let rotation = RotationRecord::new(&bob, &bob_next, RotationReason::Scheduled, NOW);
    rotation.verify().expect("rotation verifies");
    let rotation_env = Envelope::new([0x40; 16], NOW, Message::Rotation(rotation.clone()));

    json!({
        "about": "WOPR protocol v3 test vectors; see docs/PROTOCOL.md. All byte strings are lowercase hex.",
        "now_ms": NOW,
        "identities": [alice_v, bob_v, bob_next_v],
        "handshake": {
            "initiator": "alice",
            "responder": "bob",
            "initiator_ephemeral_secret": hex::encode(INITIATOR_RANDOM.0),
            "initiator_nonce": hex::encode(INITIATOR_RANDOM.1),
            "responder_ephemeral_secret": hex::encode(RESPONDER_RANDOM.0),
            "responder_nonce": hex::encode(RESPONDER_RANDOM.1),
            "hello_signed_bytes": hex::encode(hello.signed_bytes(&bob.public_id())),
            "hello": hex::encode(hello.to_bytes()),
            "hello_frame": hex::encode(encode_frame(&hello.to_bytes()).expect("frame")),
            "ack_signed_bytes": hex::encode(ack.signed_bytes(&hello)),
            "ack": hex::encode(ack.to_bytes()),
            "transcript_hash": hex::encode(th),
            "shared_secret": hex::encode(shared),
            "key_i2r": hex::encode(*keys.connection_key(i2r)),
            "key_r2i": hex::encode(*keys.connection_key(r2i)),
            "stream_4_key_i2r": hex::encode(*keys.stream_key(i2r, 4)),
            "stream_4_key_r2i": hex::encode(*keys.stream_key(r2i, 4)),
        },
        "sealed_frames": [
            {
                "direction": "i2r",
                "counter": 0,
                "plaintext_envelope": hex::encode(inject.to_bytes()),
                "envelope_signed_bytes": hex::encode(inject.signed_bytes(&bob.public_id()).expect("signed")),
                "frame": hex::encode(&frame0),
            },
            {
                "direction": "r2i",
                "counter": 0,
                "plaintext_envelope": hex::encode(delta.to_bytes()),
                "frame": hex::encode(&frame1),
            },
        ],
        "invite": {
            "issuer": "alice",
            "subject": "bob",
            "signed_bytes": hex::encode(token.signed_bytes()),
            "token": hex::encode(token.to_bytes()),
            "uri": uri,
        },
        "rotation": {
            "old": "bob",
            "new": "bob_next",
            "signed_bytes": hex::encode(rotation.signed_bytes()),
            "record_json": serde_json::to_value(&rotation).expect("json"),
            "envelope": hex::encode(rotation_env.to_bytes()),
        },
    })
}

/// The committed file's text; with `WOPR_WRITE_VECTORS` set, (re)written first, once per test process.
fn committed() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        if std::env::var_os("WOPR_WRITE_VECTORS").is_some() {
            let generated = serde_json::to_string_pretty(&generate()).expect("json") + "\n";
            std::fs::create_dir_all(path().parent().expect("parent")).expect("mkdir");
            std::fs::write(path(), generated).expect("write vectors");
        }
        std::fs::read_to_string(path())
            .expect("docs/vectors/v3.json missing: run with WOPR_WRITE_VECTORS=1 to create it")
    })
}

#[test]
fn code_matches_the_committed_v3_vectors() {
    let generated = serde_json::to_string_pretty(&generate()).expect("json") + "\n";
    assert!(committed() == generated, "code no longer matches docs/vectors/v3.json");
}

#[test]
fn committed_vectors_decode_with_the_public_api() {
    let v: Value = serde_json::from_str(committed()).expect("json");
    let bytes = |p: &str| hex::decode(v.pointer(p).and_then(Value::as_str).expect(p)).expect("hex");
    let hello = HandshakeMessage::from_bytes(&bytes("/handshake/hello")).expect("hello");
    assert!(matches!(hello, HandshakeMessage::Hello(_)));
    let ack = HandshakeMessage::from_bytes(&bytes("/handshake/ack")).expect("ack");
    assert!(matches!(ack, HandshakeMessage::HelloAck(_)));
    let token = InviteToken::from_bytes(&bytes("/invite/token")).expect("token");
    token.verify_signature().expect("token signature");
    let env = Envelope::from_bytes(&bytes("/rotation/envelope")).expect("rotation");
    assert!(env.verify(&token.subject).expect("rotation signatures").is_some());
    // The first sealed frame opens with the documented i2r key, counter 0 and label as associated data.
    let key: [u8; 32] = bytes("/handshake/key_i2r").try_into().expect("32 bytes");
    let mut open = OpeningKey::new(&key, b"wopr/v3 i2r");
    let frame = bytes("/sealed_frames/0/frame");
    let plaintext = open.open(decode_frame(&frame).expect("frame")).expect("opens");
    assert_eq!(plaintext, bytes("/sealed_frames/0/plaintext_envelope"));
    let inject = Envelope::from_bytes(&plaintext).expect("envelope");
    assert_eq!(inject.verify(&token.subject).expect("inject signature"), Some(token.issuer));
}
