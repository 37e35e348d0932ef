use std::collections::HashSet;

use super::*;

const NOW: u64 = 1_700_000_000_000;

fn invite(issuer: &Identity, subject: PublicId) -> InviteToken {
    let mut new = NewInvite::new(subject, vec!["mySession".into()], Capabilities::INJECT, NOW, [9; 16]);
    new.hints = vec!["127.0.0.1:4433".into()];
    new.sign(issuer).unwrap()
}

#[test]
fn a_token_round_trips_through_its_uri() {
    let (alice, bob) = (Identity::generate(), Identity::generate());
    let token = invite(&alice, bob.public_id());
    let uri = token.to_uri();
    assert!(uri.starts_with("wop1://"));
    assert_eq!(InviteToken::parse(&uri, NOW).unwrap(), token);
    assert_eq!(token.expires_ms, NOW + DEFAULT_INVITE_TTL_MS);
}

#[test]
fn forged_token_signature_is_rejected() {
    let (alice, bob) = (Identity::generate(), Identity::generate());
    let mut token = invite(&alice, bob.public_id());
    token.sessions = vec!["everything".into()];
    assert_eq!(InviteToken::parse(&token.to_uri(), NOW), Err(InviteError::BadSignature));
    let mut resigned = invite(&alice, bob.public_id());
    resigned.signature = bob.sign(INVITE_DOMAIN, &resigned.signed_bytes());
    let err = verify_claim(&resigned, &alice.public_id(), &bob.public_id(), NOW);
    assert_eq!(err, Err(InviteError::BadSignature));
}

#[test]
fn expired_token_is_rejected() {
    let (alice, bob) = (Identity::generate(), Identity::generate());
    let token = invite(&alice, bob.public_id());
    let later = NOW + DEFAULT_INVITE_TTL_MS;
    assert!(matches!(InviteToken::parse(&token.to_uri(), later), Err(InviteError::Expired { .. })));
    let err = verify_claim(&token, &alice.public_id(), &bob.public_id(), later).unwrap_err();
    assert!(matches!(err, InviteError::Expired { .. }));
    assert_eq!(err.code(), ErrorCode::Invalid);
    assert!(verify_claim(&token, &alice.public_id(), &bob.public_id(), later - 1).is_ok());
}

#[test]
fn token_claimed_by_a_key_other_than_its_subject_is_rejected() {
    let (alice, bob, eve) = (Identity::generate(), Identity::generate(), Identity::generate());
    let token = invite(&alice, bob.public_id());
    let err = verify_claim(&token, &alice.public_id(), &eve.public_id(), NOW).unwrap_err();
    assert!(matches!(err, InviteError::WrongClaimant { .. }));
    assert_eq!(err.code(), ErrorCode::Unauthorized);
}

#[test]
fn token_issued_by_someone_else_is_not_honoured() {
    let (alice, bob, eve) = (Identity::generate(), Identity::generate(), Identity::generate());
    let token = invite(&eve, bob.public_id());
    let err = verify_claim(&token, &alice.public_id(), &bob.public_id(), NOW);
    assert!(matches!(err, Err(InviteError::WrongIssuer { .. })));
}

#[test]
fn reused_token_nonce_is_rejected() {
    let (alice, bob) = (Identity::generate(), Identity::generate());
    let token = invite(&alice, bob.public_id());
    let mut used = HashSet::new();
    let first = verify_claim(&token, &alice.public_id(), &bob.public_id(), NOW).unwrap();
    assert_eq!(first.consume(&mut used).unwrap(), token);
    let again = verify_claim(&token, &alice.public_id(), &bob.public_id(), NOW + 1).unwrap();
    assert_eq!(again.nonce(), &[9; 16]);
    assert_eq!(again.consume(&mut used), Err(InviteError::NonceUsed));
}

#[test]
fn parse_errors_say_what_is_wrong() {
    let (alice, bob) = (Identity::generate(), Identity::generate());
    let uri = invite(&alice, bob.public_id()).to_uri();
    assert_eq!(InviteToken::parse("wop2://abc", NOW), Err(InviteError::BadPrefix));
    assert_eq!(InviteToken::parse("wop1://a+b/", NOW), Err(InviteError::BadBase64));
    assert_eq!(InviteToken::parse(&format!("{uri}=="), NOW), Err(InviteError::BadBase64));
    let bytes = invite(&alice, bob.public_id()).to_bytes();
    let cut = format!("wop1://{}", URL_SAFE_NO_PAD.encode(&bytes[..bytes.len() - 10]));
    assert_eq!(InviteToken::parse(&cut, NOW), Err(InviteError::Truncated));
    let long = format!("wop1://{}", "A".repeat(MAX_TOKEN_CHARS + 1));
    assert_eq!(InviteToken::parse(&long, NOW), Err(InviteError::TooLong));
    assert_eq!(InviteToken::parse(&format!("  {uri}\n"), NOW).map(|_| ()), Ok(()));
}

#[test]
fn issuing_refuses_out_of_bounds_fields() {
    let (alice, bob) = (Identity::generate(), Identity::generate());
    let none = NewInvite::new(bob.public_id(), vec![], Capabilities::MESSAGE, NOW, [0; 16]);
    assert!(matches!(none.sign(&alice), Err(InviteError::Invalid(_))));
    let no_caps = NewInvite::new(bob.public_id(), vec!["s".into()], Capabilities::default(), NOW, [0; 16]);
    assert!(matches!(no_caps.sign(&alice), Err(InviteError::Invalid(_))));
}

#[test]
fn capabilities_are_exactly_message_and_inject() {
    let both = Capabilities::MESSAGE.union(Capabilities::INJECT);
    assert_eq!(both.names(), ["message", "inject"]);
    assert_eq!(Capabilities::from_bits(4), None);
    assert_eq!(Capabilities::parse("admin"), None);
    assert!(both.contains(Capabilities::INJECT) && !Capabilities::MESSAGE.contains(both));
}
