use wopr_identity::Identity;
use x25519_dalek::{PublicKey, StaticSecret};

use super::*;
use crate::channel::ChannelError;
use crate::codec::{Decode, Encode};

const NOW: u64 = 1_700_000_000_000;

fn alice() -> Identity {
    Identity::from_seeds([1; 32], [2; 32], 0)
}

fn bob() -> Identity {
    Identity::from_seeds([3; 32], [4; 32], 0)
}

fn mallory() -> Identity {
    Identity::from_seeds([5; 32], [6; 32], 0)
}

fn random(n: u8) -> HandshakeRandom {
    HandshakeRandom::new([n; 32], [n.wrapping_add(100); 32])
}

/// A complete handshake between alice (initiator) and bob (responder).
fn handshake() -> (Session, Session) {
    let (a, b) = (alice(), bob());
    let (init, hello) = Initiator::start(&a, b.public_id(), random(10), NOW);
    let hello = Hello::from_bytes(&hello.to_bytes()).unwrap();
    let (ack, bob_session) = respond(&b, &a.public_id(), &hello, random(20), NOW + 5).unwrap();
    let reply = HandshakeMessage::from_bytes(&HandshakeMessage::from(ack).to_bytes()).unwrap();
    let alice_session = init.finish(&reply, NOW + 10).unwrap();
    (alice_session, bob_session)
}

fn ephemeral(n: u8) -> [u8; 32] {
    PublicKey::from(&StaticSecret::from([n; 32])).to_bytes()
}

/// A version-3 Ack signed by `signer` answering `hello`, as a hostile or clock-skewed responder sends it.
fn ack_by(signer: &Identity, hello: &Hello, timestamp_ms: u64) -> HelloAck {
    let mut ack = HelloAck {
        version: 3,
        versions: vec![3],
        static_key: signer.public_id(),
        ephemeral: ephemeral(30),
        timestamp_ms,
        nonce: [0; 32],
        signature: [0; 64],
    };
    ack.sign(signer, hello);
    ack
}

#[test]
fn both_sides_derive_the_same_session_and_can_talk_both_ways() {
    let (mut a, mut b) = handshake();
    assert_eq!(a.transcript_hash(), b.transcript_hash());
    assert_eq!((a.version(), b.version()), (3, 3));
    assert_eq!(a.remote(), bob().public_id());
    assert_eq!(b.remote(), alice().public_id());
    let (mut a_seal, mut a_open) = a.channel().unwrap();
    let (mut b_seal, mut b_open) = b.channel().unwrap();
    assert_eq!(b_open.open(&a_seal.seal(b"hi bob").unwrap()).unwrap(), b"hi bob");
    assert_eq!(a_open.open(&b_seal.seal(b"hi alice").unwrap()).unwrap(), b"hi alice");
    // A frame alice sealed cannot be reflected back to her.
    assert_eq!(a_open.open(&a_seal.seal(b"echo").unwrap()), Err(ChannelError::OpenFailed));
}

#[test]
fn each_stream_gets_its_own_keys_and_no_key_is_handed_out_twice() {
    let (mut a, mut b) = handshake();
    let (mut a4, _) = a.stream_channel(4).unwrap();
    let (_, mut b4) = b.stream_channel(4).unwrap();
    let (_, mut b8) = b.stream_channel(8).unwrap();
    let sealed = a4.seal(b"on stream 4").unwrap();
    assert_eq!(b8.open(&sealed), Err(ChannelError::OpenFailed));
    assert_eq!(b4.open(&sealed).unwrap(), b"on stream 4");
    assert!(matches!(a.stream_channel(4), Err(ChannelError::KeysAlreadyTaken(4))));
    assert!(matches!(a.stream_channel(0), Err(ChannelError::KeysAlreadyTaken(0))));
    assert!(a.stream_channel(1).is_ok(), "other stream types count separately");
    assert!(a.channel().is_ok());
    assert!(matches!(a.channel(), Err(ChannelError::KeysAlreadyTaken(_))));
}

#[test]
fn forged_hello_signature_is_rejected() {
    let (a, b) = (alice(), bob());
    let (_, mut hello) = Initiator::start(&a, b.public_id(), random(10), NOW);
    hello.signature[0] ^= 1;
    let err = respond(&b, &a.public_id(), &hello, random(20), NOW).unwrap_err();
    assert_eq!(err, HandshakeError::BadSignature);
    assert_eq!(err.code(), ErrorCode::Invalid);
}

#[test]
fn hello_meant_for_someone_else_is_rejected() {
    let (a, b) = (alice(), bob());
    // Alice greeted mallory; mallory forwards the Hello to bob, pretending to be alice's connection.
    let (_, hello) = Initiator::start(&a, mallory().public_id(), random(10), NOW);
    let err = respond(&b, &a.public_id(), &hello, random(20), NOW).unwrap_err();
    assert_eq!(err, HandshakeError::BadSignature);
}

#[test]
fn handshake_signer_different_from_the_transport_remote_key_is_rejected() {
    let (a, b, m) = (alice(), bob(), mallory());
    // Mallory's own, validly signed Hello, arriving on a connection the transport says is alice's.
    let (_, hello) = Initiator::start(&m, b.public_id(), random(10), NOW);
    let err = respond(&b, &a.public_id(), &hello, random(20), NOW).unwrap_err();
    assert_eq!(err, HandshakeError::SignerMismatch { expected: a.public_id(), signer: m.public_id() });
    assert_eq!(err.code(), ErrorCode::Unauthorized);
}

#[test]
fn ack_from_a_key_other_than_the_dialed_one_is_rejected() {
    let (a, b, m) = (alice(), bob(), mallory());
    let (init, hello) = Initiator::start(&a, b.public_id(), random(10), NOW);
    // Mallory answers (signing correctly with her own key) in bob's place.
    let err = init.finish(&ack_by(&m, &hello, NOW).into(), NOW).unwrap_err();
    assert!(matches!(err, HandshakeError::SignerMismatch { .. }));
}

#[test]
fn forged_ack_signature_is_rejected() {
    let (a, b) = (alice(), bob());
    let (init, hello) = Initiator::start(&a, b.public_id(), random(10), NOW);
    let (mut ack, _) = respond(&b, &a.public_id(), &hello, random(20), NOW).unwrap();
    ack.ephemeral = ephemeral(99);
    assert_eq!(init.finish(&ack.into(), NOW).unwrap_err(), HandshakeError::BadSignature);
}

#[test]
fn hello_offering_no_supported_version_is_rejected() {
    let (a, b) = (alice(), bob());
    let mut hello = Hello {
        versions: vec![1, 2],
        static_key: a.public_id(),
        ephemeral: ephemeral(7),
        timestamp_ms: NOW,
        nonce: [0; 32],
        signature: [0; 64],
    };
    hello.sign(&a, &b.public_id());
    let err = respond(&b, &a.public_id(), &hello, random(20), NOW).unwrap_err();
    assert_eq!(err, HandshakeError::NoCommonVersion { offered: vec![1, 2] });
    assert_eq!(err.code(), ErrorCode::VersionMismatch);
    assert_eq!(err.to_reject().code, ErrorCode::VersionMismatch);
}

#[test]
fn version_downgrade_in_the_ack_is_rejected() {
    let (a, b) = (alice(), bob());
    for (version, versions) in [(2, vec![3, 2]), (4, vec![4, 3]), (3, vec![4])] {
        let (init, hello) = Initiator::start(&a, b.public_id(), random(10), NOW);
        let (mut ack, _) = respond(&b, &a.public_id(), &hello, random(20), NOW).unwrap();
        ack.version = version;
        ack.versions = versions;
        ack.sign(&b, &hello); // even a correctly signed downgrade is refused
        let err = init.finish(&ack.into(), NOW).unwrap_err();
        assert!(matches!(err, HandshakeError::Downgrade { chosen, .. } if chosen == version), "{err}");
        assert_eq!(err.code(), ErrorCode::VersionMismatch);
    }
}

#[test]
fn tampering_with_the_offered_versions_breaks_the_hello_signature() {
    let (a, b) = (alice(), bob());
    let (_, mut hello) = Initiator::start(&a, b.public_id(), random(10), NOW);
    hello.versions = vec![2, 3];
    assert_eq!(
        respond(&b, &a.public_id(), &hello, random(20), NOW).unwrap_err(),
        HandshakeError::BadSignature
    );
}

#[test]
fn timestamps_more_than_five_minutes_off_are_rejected() {
    let (a, b) = (alice(), bob());
    let (_, hello) = Initiator::start(&a, b.public_id(), random(10), NOW);
    for now in [NOW + MAX_SKEW_MS + 1, NOW - MAX_SKEW_MS - 1] {
        let err = respond(&b, &a.public_id(), &hello, random(20), now).unwrap_err();
        assert!(matches!(err, HandshakeError::ClockSkew { .. }));
    }
    assert!(respond(&b, &a.public_id(), &hello, random(20), NOW + MAX_SKEW_MS).is_ok());
    let (init, hello) = Initiator::start(&a, b.public_id(), random(10), NOW);
    let skewed = ack_by(&b, &hello, NOW - MAX_SKEW_MS - 1);
    assert!(matches!(init.finish(&skewed.into(), NOW), Err(HandshakeError::ClockSkew { .. })));
}

#[test]
fn a_low_order_ephemeral_key_is_rejected() {
    let (a, b) = (alice(), bob());
    let mut hello = Hello {
        versions: vec![3],
        static_key: a.public_id(),
        ephemeral: [0; 32],
        timestamp_ms: NOW,
        nonce: [0; 32],
        signature: [0; 64],
    };
    hello.sign(&a, &b.public_id());
    let err = respond(&b, &a.public_id(), &hello, random(20), NOW).unwrap_err();
    assert_eq!(err, HandshakeError::WeakEphemeral);
}

#[test]
fn a_reject_or_an_unexpected_message_ends_the_handshake() {
    let (a, b) = (alice(), bob());
    let (init, hello) = Initiator::start(&a, b.public_id(), random(10), NOW);
    let reject = Reject { code: ErrorCode::VersionMismatch, message: "speak v3".into() };
    let err = init.finish(&reject.into(), NOW).unwrap_err();
    assert_eq!(err.code(), ErrorCode::VersionMismatch);
    let (init, _) = Initiator::start(&a, b.public_id(), random(10), NOW);
    assert!(matches!(init.finish(&hello.into(), NOW), Err(HandshakeError::Unexpected { .. })));
}

#[test]
fn different_randomness_gives_different_sessions() {
    let (a, b) = (alice(), bob());
    let run = |r: u8| {
        let (init, hello) = Initiator::start(&a, b.public_id(), random(r), NOW);
        let (ack, _) = respond(&b, &a.public_id(), &hello, random(r + 1), NOW).unwrap();
        *init.finish(&ack.into(), NOW).unwrap().transcript_hash()
    };
    assert_ne!(run(10), run(12));
}

#[test]
fn secrets_do_not_appear_in_debug_output() {
    let (a, _) = handshake();
    let shown = format!("{a:?} {:?} {:?}", random(10), derive_keys(&[1; 32], &[2; 32]));
    assert!(!shown.contains("10, 10"));
    assert!(shown.contains("redacted"));
}
