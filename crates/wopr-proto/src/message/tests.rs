use wopr_identity::{Identity, RotationReason, RotationRecord};

use super::*;
use crate::invite::NewInvite;

const NOW: u64 = 1_700_000_000_000;

fn alice() -> Identity {
    Identity::from_seeds([1; 32], [2; 32], 0)
}

fn bob() -> Identity {
    Identity::from_seeds([3; 32], [4; 32], 0)
}

fn signed_inject(author: &Identity, recipient: &PublicId) -> Envelope {
    let mut env = Envelope::new([7; 16], NOW, Message::Inject(Inject::new("mySession", "hello AI", 0)));
    env.sign(author, recipient).unwrap();
    env
}

#[test]
fn a_signed_inject_round_trips_and_verifies_as_from_its_author() {
    let (a, b) = (alice(), bob());
    let env = signed_inject(&a, &b.public_id());
    let back = Envelope::from_bytes(&env.to_bytes()).unwrap();
    assert_eq!(back, env);
    assert_eq!(back.verify(&b.public_id()), Ok(Some(a.public_id())));
    assert_eq!(back.verify_from(&b.public_id(), &a.public_id()), Ok(()));
}

#[test]
fn forged_message_signature_is_rejected() {
    let (a, b) = (alice(), bob());
    let mut env = signed_inject(&a, &b.public_id());
    if let Message::Inject(m) = &mut env.message {
        m.text = "rm -rf /".into();
    }
    assert_eq!(env.verify(&b.public_id()), Err(MessageError::BadSignature));
    let mut env = signed_inject(&a, &b.public_id());
    env.timestamp_ms += 1;
    assert_eq!(env.verify(&b.public_id()), Err(MessageError::BadSignature));
}

#[test]
fn a_message_signed_for_one_recipient_cannot_be_forwarded_to_another() {
    let (a, b) = (alice(), bob());
    let carol = Identity::generate();
    let env = signed_inject(&a, &b.public_id());
    assert_eq!(env.verify(&carol.public_id()), Err(MessageError::BadSignature));
}

#[test]
fn a_message_authored_by_someone_other_than_the_connection_peer_is_refused() {
    let (a, b) = (alice(), bob());
    let mallory = Identity::generate();
    let env = signed_inject(&a, &b.public_id());
    let err = env.verify_from(&b.public_id(), &mallory.public_id()).unwrap_err();
    assert!(matches!(err, MessageError::AuthorMismatch { .. }));
    assert_eq!(err.code(), ErrorCode::Unauthorized);
}

#[test]
fn log_and_claim_are_signed_too() {
    let (a, b) = (alice(), bob());
    let token = NewInvite::new(a.public_id(), vec!["s".into()], Capabilities::MESSAGE, NOW, [1; 16])
        .sign(&b)
        .unwrap();
    for message in [Message::Log(Log::new("s", "note")), Message::Claim(Claim::new(token))] {
        let mut env = Envelope::new([3; 16], NOW, message);
        env.sign(&a, &b.public_id()).unwrap();
        let back = Envelope::from_bytes(&env.to_bytes()).unwrap();
        assert_eq!(back.verify_from(&b.public_id(), &a.public_id()), Ok(()));
    }
}

#[test]
fn unsigned_types_cannot_be_signed_and_verify_to_no_author() {
    let a = alice();
    let mut env = Envelope::new([0; 16], NOW, Message::InjectDelta { text: "tok".into() });
    assert_eq!(env.sign(&a, &bob().public_id()), Err(MessageError::NotSigned(3)));
    assert_eq!(env.verify(&bob().public_id()), Ok(None));
    assert_eq!(env.signed_bytes(&bob().public_id()), None);
}

#[test]
fn a_rotation_record_authenticates_itself_whoever_delivers_it() {
    let old = alice();
    let new = Identity::from_seeds([8; 32], [9; 32], NOW);
    let record = RotationRecord::new(&old, &new, RotationReason::Scheduled, NOW);
    let env = Envelope::new([5; 16], NOW, Message::Rotation(record));
    let back = Envelope::from_bytes(&env.to_bytes()).unwrap();
    let me = bob().public_id();
    assert_eq!(back.verify(&me), Ok(Some(old.public_id())));
    assert_eq!(back.verify_from(&me, &old.public_id()), Ok(()));
    assert_eq!(back.verify_from(&me, &new.public_id()), Ok(()));
    // A later key of the same node (or anyone) may deliver it: both record signatures are what count.
    assert_eq!(back.verify_from(&me, &Identity::from_seeds([6; 32], [7; 32], NOW).public_id()), Ok(()));
    let mut forged = back;
    if let Message::Rotation(r) = &mut forged.message {
        r.new_key = me;
    }
    assert_eq!(forged.verify(&bob().public_id()), Err(MessageError::BadSignature));
    assert_eq!(forged.verify_from(&me, &old.public_id()), Err(MessageError::BadSignature));
}

#[test]
fn error_codes_are_the_cli_exit_codes() {
    let codes = [
        (ErrorCode::Rejected, 2),
        (ErrorCode::Invalid, 3),
        (ErrorCode::RateLimited, 4),
        (ErrorCode::VersionMismatch, 5),
        (ErrorCode::Unauthorized, 7),
    ];
    for (code, exit) in codes {
        assert_eq!(wopr_store::ExitCode::from_code(i32::from(code.as_u8())).code(), exit);
        assert_eq!(ErrorCode::from_u8(code.as_u8()), Ok(code));
    }
    assert!(ErrorCode::from_u8(6).is_err());
    let err = Message::Error(ErrorMessage {
        code: ErrorCode::RateLimited,
        message: "30/minute limit; retry in 12 s".into(),
        retry_after_ms: Some(12_000),
    });
    let env = Envelope::new([1; 16], NOW, err);
    assert_eq!(Envelope::from_bytes(&env.to_bytes()).unwrap(), env);
}

#[test]
fn unknown_types_and_oversized_fields_are_typed_errors() {
    let mut bytes =
        Envelope::new([0; 16], NOW, Message::InjectDone { status: DoneStatus::Completed }).to_bytes();
    bytes[24] = 42;
    assert!(matches!(Envelope::from_bytes(&bytes), Err(CodecError::UnknownTag { value: 42, .. })));
    let long_session = "s".repeat(MAX_SESSION_NAME + 1);
    let mut env = Envelope::new([0; 16], NOW, Message::Inject(Inject::new(long_session, "x", 0)));
    env.sign(&alice(), &bob().public_id()).unwrap();
    assert!(matches!(Envelope::from_bytes(&env.to_bytes()), Err(CodecError::TooLong { .. })));
}

fn connect_request(author: &Identity, recipient: &PublicId, topic: &str) -> Envelope {
    let profile = Profile::new(author, r#"{"name":"Alice"}"#, vec![topic.into()], NOW).unwrap();
    let req = ConnectRequest::new(topic, profile, Some("help".into()), "met you in coffee");
    let mut env = Envelope::new([8; 16], NOW, Message::ConnectRequest(req));
    env.sign(author, recipient).unwrap();
    env
}

#[test]
fn a_connect_request_round_trips_signed_and_binds_its_profile_to_its_author() {
    let (a, b) = (alice(), bob());
    let env = connect_request(&a, &b.public_id(), "coffee");
    let back = Envelope::from_bytes(&env.to_bytes()).unwrap();
    assert_eq!(back, env);
    assert_eq!(back.verify_from(&b.public_id(), &a.public_id()), Ok(()));
    let Message::ConnectRequest(req) = &back.message else { panic!("{back:?}") };
    req.check_profile(NOW).unwrap();
    // Bob relaying Alice's profile in his own request is refused: the profile must be the author's.
    let mut relayed = req.clone();
    relayed.author = b.public_id();
    assert_eq!(relayed.check_profile(NOW), Err(ProfileError::BadSignature));
    // A profile for another topic does not count for this one.
    let mut moved = req.clone();
    moved.topic = "tea".into();
    assert_eq!(moved.check_profile(NOW), Err(ProfileError::WrongTopic));
    // Tampering with the note breaks the envelope's signature.
    let mut env = env;
    if let Message::ConnectRequest(m) = &mut env.message {
        m.note = "give me inject".into();
    }
    assert_eq!(env.verify(&b.public_id()), Err(MessageError::BadSignature));
}

#[test]
fn a_connect_response_round_trips_and_bad_flags_are_refused() {
    let resp = Message::ConnectResponse {
        accepted: true,
        sessions: vec!["discover:abc".into()],
        capabilities: Capabilities::MESSAGE,
        reason: "auto-accepted".into(),
    };
    let env = Envelope::new([9; 16], NOW, resp);
    let bytes = env.to_bytes();
    assert_eq!(Envelope::from_bytes(&bytes).unwrap(), env);
    let mut bad = bytes.clone();
    bad[16 + 8 + 1] = 2; // the accepted flag
    assert!(matches!(Envelope::from_bytes(&bad), Err(CodecError::UnknownTag { .. })));
}
