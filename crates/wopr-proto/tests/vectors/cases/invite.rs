//! Invite tokens (§8): parsing a `wop1://` string and the issuer's check of a claim, in their order.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use wopr_proto::codec::Encode;
use wopr_proto::invite::{Capabilities, InviteToken, MAX_TOKEN_CHARS};

use super::{Accepted, Cases, Fails};
use crate::fixtures::{BOB_NEXT, NOW};
use crate::world::World;

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn uri_of(token_bytes: &[u8]) -> String {
    format!("wop1://{}", URL_SAFE_NO_PAD.encode(token_bytes))
}

/// The token with `edit` applied to its fields, encoded without signing again.
fn edited(token: &InviteToken, edit: impl FnOnce(&mut InviteToken)) -> Vec<u8> {
    let mut t = token.clone();
    edit(&mut t);
    t.to_bytes()
}

pub fn parse<'a>(world: &World, identities: &'a Value) -> Cases<'a> {
    let mut c = Cases::new("invite_parse", identities);
    let token = &world.invite;
    let uri = token.to_uri();
    let input = |uri: &str, now_ms: u64| json!({ "uri": uri, "now_ms": now_ms });
    let body = uri.strip_prefix("wop1://").expect("prefix");

    c.add("the_vectors_invite", input(&uri, NOW), Accepted);
    c.add("surrounding_whitespace_is_trimmed", input(&format!("  {uri}\n"), NOW), Accepted);
    c.add("one_ms_before_expiry", input(&uri, token.expires_ms - 1), Accepted);

    c.add("another_scheme", input(&format!("wop2://{body}"), NOW), Fails("BadPrefix", Some(3)));
    c.add("uppercase_scheme", input(&format!("WOP1://{body}"), NOW), Fails("BadPrefix", Some(3)));
    c.add("no_scheme", input(body, NOW), Fails("BadPrefix", Some(3)));
    let long = "A".repeat(MAX_TOKEN_CHARS + 1);
    c.add("over_16384_characters", input(&format!("wop1://{long}"), NOW), Fails("TooLong", Some(3)));
    c.add("order_prefix_before_length", input(&format!("wop2://{long}"), NOW), Fails("BadPrefix", Some(3)));
    let bad64 = Fails("BadBase64", Some(3));
    c.add("padded", input(&format!("{uri}="), NOW), bad64);
    c.add("standard_alphabet", input(&uri.replacen(['-', '_'], "+", 1), NOW), bad64);
    c.add("space_inside", input(&format!("{} {}", &uri[..40], &uri[40..]), NOW), bad64);
    // The last character carries unused low bits (the token is not a multiple of 3 bytes); they must be 0.
    let unused_bits = match token.to_bytes().len() % 3 {
        1 => 4,
        2 => 2,
        _ => panic!("the vectors' token must leave unused bits"),
    };
    let last = uri.as_bytes()[uri.len() - 1];
    let index = ALPHABET.iter().position(|&ch| ch == last).expect("base64url");
    assert_eq!(index % (1 << unused_bits), 0, "canonical");
    let noncanonical = format!("{}{}", &uri[..uri.len() - 1], ALPHABET[index + 1] as char);
    c.add("non_zero_unused_bits", input(&noncanonical, NOW), bad64);
    let bytes = token.to_bytes();
    c.add(
        "truncated_by_one_byte",
        input(&uri_of(&bytes[..bytes.len() - 1]), NOW),
        Fails("Truncated", Some(3)),
    );
    c.add("only_40_bytes", input(&uri_of(&bytes[..40]), NOW), Fails("Truncated", Some(3)));
    c.add(
        "trailing_byte",
        input(&uri_of(&[bytes.as_slice(), &[0]].concat()), NOW),
        Fails("Invalid.TrailingBytes", Some(3)),
    );
    // Field checks come before the signature (these tokens are not signed again).
    let caps = |bits| Capabilities::from_bits(bits).expect("bits");
    let mut unknown_bit = bytes.clone();
    let caps_at = 32 * 3 + 2 + token.sessions.iter().map(|s| 4 + s.len()).sum::<usize>();
    assert_eq!(unknown_bit[caps_at], token.capabilities.bits());
    unknown_bit[caps_at] = 4;
    c.add("capability_bit_2", input(&uri_of(&unknown_bit), NOW), Fails("Invalid.UnknownTag", Some(3)));
    let invalid = Fails("Invalid.Invalid", Some(3));
    c.add("no_capabilities", input(&uri_of(&edited(token, |t| t.capabilities = caps(0))), NOW), invalid);
    c.add("no_sessions", input(&uri_of(&edited(token, |t| t.sessions.clear())), NOW), invalid);
    c.add(
        "empty_session_name",
        input(&uri_of(&edited(token, |t| t.sessions = vec![String::new()])), NOW),
        invalid,
    );
    let too_long = Fails("Invalid.TooLong", Some(3));
    c.add(
        "33_sessions",
        input(&uri_of(&edited(token, |t| t.sessions = (0..33).map(|i| format!("s{i}")).collect())), NOW),
        too_long,
    );
    c.add(
        "session_name_of_256_bytes",
        input(&uri_of(&edited(token, |t| t.sessions = vec!["s".repeat(256)])), NOW),
        too_long,
    );
    c.add("9_hints", input(&uri_of(&edited(token, |t| t.hints = vec!["h".into(); 9])), NOW), too_long);
    c.add(
        "hint_of_257_bytes",
        input(&uri_of(&edited(token, |t| t.hints = vec!["h".repeat(257)])), NOW),
        too_long,
    );
    let altered = edited(token, |t| t.hints = vec!["127.0.0.1:7439".into()]);
    c.add("altered_after_signing", input(&uri_of(&altered), NOW), Fails("BadSignature", Some(3)));
    c.add("expired", input(&uri, token.expires_ms), Fails("Expired", Some(3)));
    c.add(
        "order_signature_before_expiry",
        input(&uri_of(&altered), token.expires_ms),
        Fails("BadSignature", Some(3)),
    );
    c.add(
        "order_truncation_before_signature",
        input(&uri_of(&altered[..altered.len() - 1]), NOW),
        Fails("Truncated", Some(3)),
    );
    c
}

pub fn claim<'a>(world: &World, identities: &'a Value) -> Cases<'a> {
    let mut c = Cases::new("invite_claim", identities);
    let token = &world.invite;
    let input = |token: &[u8], issuer: &str, claimant: &str, now_ms: u64, used: &[[u8; 16]]| {
        json!({
            "token": hex::encode(token),
            "issuer": issuer,
            "claimant": claimant,
            "now_ms": now_ms,
            "used_nonces": used.iter().map(hex::encode).collect::<Vec<_>>(),
        })
    };
    let bytes = token.to_bytes();
    let expired = token.expires_ms;
    let nonce = token.nonce;
    let other = BOB_NEXT.name;
    c.add("bob_claims_alices_invite", input(&bytes, "alice", "bob", NOW, &[]), Accepted);
    c.add("another_nonce_was_used", input(&bytes, "alice", "bob", NOW, &[[0x99; 16]]), Accepted);
    c.add("wrong_subject", input(&bytes, "alice", other, NOW, &[]), Fails("WrongClaimant", Some(7)));
    c.add("claimed_at_another_node", input(&bytes, "bob", "bob", NOW, &[]), Fails("WrongIssuer", Some(3)));
    c.add("expired", input(&bytes, "alice", "bob", expired, &[]), Fails("Expired", Some(3)));
    c.add("already_claimed", input(&bytes, "alice", "bob", NOW, &[nonce]), Fails("NonceUsed", Some(3)));
    let altered = edited(token, |t| t.sessions = vec!["otherSession".into()]);
    c.add("altered_after_signing", input(&altered, "alice", "bob", NOW, &[]), Fails("BadSignature", Some(3)));
    // Order: issuer, signature, expiry, subject, nonce.
    c.add(
        "order_issuer_first",
        input(&altered, "bob", other, expired, &[nonce]),
        Fails("WrongIssuer", Some(3)),
    );
    c.add(
        "order_signature_before_expiry",
        input(&altered, "alice", other, expired, &[nonce]),
        Fails("BadSignature", Some(3)),
    );
    c.add(
        "order_expiry_before_subject",
        input(&bytes, "alice", other, expired, &[nonce]),
        Fails("Expired", Some(3)),
    );
    c.add(
        "order_subject_before_nonce",
        input(&bytes, "alice", other, NOW, &[nonce]),
        Fails("WrongClaimant", Some(7)),
    );
    c
}
