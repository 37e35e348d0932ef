//! The friend protocol (§15): a request as a line and as bytes at its target, an accept at the requester,
//! each check in its order.

use serde_json::{Value, json};
use wopr_proto::MAX_SKEW_MS;
use wopr_proto::codec::Encode;
use wopr_proto::friend::line::MAX_LINE_BYTES;
use wopr_proto::friend::{FRIEND_ACCEPT_DOMAIN, FriendAccept, FriendCard, FriendRequest, MAX_FRIEND_BYTES};

use super::{Accepted, Cases, Fails};
use crate::fixtures::{ALICE, BOB, BOB_NEXT, NOW};
use crate::world::World;

const INVALID: Option<u8> = Some(3);
const UNAUTHORIZED: Option<u8> = Some(7);

fn edited_request(r: &FriendRequest, edit: impl FnOnce(&mut FriendRequest)) -> FriendRequest {
    let mut r = r.clone();
    edit(&mut r);
    r
}

fn edited_accept(a: &FriendAccept, edit: impl FnOnce(&mut FriendAccept)) -> FriendAccept {
    let mut a = a.clone();
    edit(&mut a);
    a
}

/// The request's line with its field `field` given the text `value` (the field must be in the line).
fn with_field(line: &str, field: &str, value: &str) -> String {
    let parts: Vec<String> = line
        .split(" | ")
        .map(|p| match p.split_once(':') {
            Some((k, _)) if k == field => format!("{k}:{value}"),
            _ => p.to_string(),
        })
        .collect();
    assert!(parts.iter().any(|p| p.starts_with(&format!("{field}:"))), "{field} in {line}");
    parts.join(" | ")
}

pub fn request_line<'a>(world: &World, identities: &'a Value) -> Cases<'a> {
    let mut c = Cases::new("friend_request_line", identities);
    let req = &world.friend_request;
    let line = req.to_line();
    let input = |line: &str, me: &str, now_ms: u64| json!({ "line": line, "me": me, "now_ms": now_ms });
    let bob = BOB.name;

    c.add("alices_request_to_bob", input(&line, bob, NOW), Accepted);
    c.add("surrounding_whitespace", input(&format!(" \t{line}\r\n"), bob, NOW), Accepted);
    c.add("no_spaces_around_bars", input(&line.replace(" | ", "|"), bob, NOW), Accepted);
    c.add("tabs_around_bars", input(&line.replace(" | ", "\t|  "), bob, NOW), Accepted);
    c.add("five_minutes_later", input(&line, bob, NOW + MAX_SKEW_MS), Accepted);
    c.add("five_minutes_earlier", input(&line, bob, NOW - MAX_SKEW_MS), Accepted);
    let no_hints = edited_request(req, |r| r.from.hints.clear());
    let resigned = FriendRequest::new(&ALICE.identity(), "alice", vec![], BOB.id(), NOW).expect("request");
    assert_eq!(resigned.signed_bytes(), no_hints.signed_bytes());
    c.add("no_hints", input(&resigned.to_line(), bob, NOW), Accepted);

    let fails = |e| Fails(e, INVALID);
    c.add("empty", input("", bob, NOW), fails("NotAFriendLine"));
    c.add(
        "lowercase_tag",
        input(&line.replacen("FRIEND_REQUEST", "friend_request", 1), bob, NOW),
        fails("NotAFriendLine"),
    );
    c.add("no_tag", input(line.split_once(" | ").expect("tag").1, bob, NOW), fails("NotAFriendLine"));
    let accept_line = world.friend_accept.to_line();
    c.add("an_accept_line", input(&accept_line, bob, NOW), fails("WrongKind"));
    let long = format!("{line} | {}", "x".repeat(MAX_LINE_BYTES));
    c.add("over_8192_bytes", input(&long, bob, NOW), fails("LineTooLong"));
    c.add("order_length_before_tag", input(&format!("x{long}"), bob, NOW), fails("LineTooLong"));
    let drop = |field: &str| {
        line.split(" | ").filter(|p| !p.starts_with(&format!("{field}:"))).collect::<Vec<_>>().join(" | ")
    };
    c.add("missing_encrypt_pub", input(&drop("encryptPub"), bob, NOW), fails("BadField.encryptPub"));
    c.add("missing_sig", input(&drop("sig"), bob, NOW), fails("BadField.sig"));
    let ts = req.ts_ms.to_string();
    let sig = hex::encode(req.signature);
    let swapped = line.replace(&format!("ts:{ts} | sig:{sig}"), &format!("sig:{sig} | ts:{ts}"));
    c.add("ts_and_sig_swapped", input(&swapped, bob, NOW), fails("BadField.ts"));
    c.add(
        "renamed_field",
        input(&line.replace("encryptPub:", "encrypt_pub:"), bob, NOW),
        fails("BadField.encryptPub"),
    );
    c.add("extra_field", input(&format!("{line} | nonce:00"), bob, NOW), fails("BadField.sig"));
    c.add("trailing_bar", input(&format!("{line} |"), bob, NOW), fails("BadField.sig"));
    let to = req.to.to_hex();
    c.add(
        "uppercase_hex",
        input(&with_field(&line, "to", &to.to_uppercase()), bob, NOW),
        fails("BadField.to"),
    );
    c.add(
        "wopr_url_as_to",
        input(&with_field(&line, "to", &req.to.to_url()), bob, NOW),
        fails("BadField.to"),
    );
    c.add("short_pubkey", input(&with_field(&line, "pubkey", &to[..62]), bob, NOW), fails("BadField.pubkey"));
    c.add(
        "ts_with_leading_zero",
        input(&with_field(&line, "ts", &format!("0{ts}")), bob, NOW),
        fails("BadField.ts"),
    );
    c.add(
        "ts_over_u64",
        input(&with_field(&line, "ts", "18446744073709551616"), bob, NOW),
        fails("BadField.ts"),
    );
    c.add("ts_negative", input(&with_field(&line, "ts", "-1"), bob, NOW), fails("BadField.ts"));
    c.add("sig_of_63_bytes", input(&with_field(&line, "sig", &sig[..126]), bob, NOW), fails("BadField.sig"));
    let hints = |v: &str| input(&with_field(&line, "hints", v), bob, NOW);
    c.add("hint_with_a_raw_space", hints("relay https://x"), fails("BadField.hints"));
    c.add("hint_escaping_a_plain_character", hints("%41"), fails("BadField.hints"));
    c.add("hint_with_lowercase_escape", hints("a%2cb"), fails("BadField.hints"));
    c.add("hint_with_a_cut_escape", hints("a%2"), fails("BadField.hints"));
    c.add("empty_hint", hints("a,,b"), fails("BadField.hints"));
    c.add("hint_not_utf8_once_unescaped", hints("%FF"), fails("BadField.hints"));
    c.add("raw_non_ascii_hint", hints("Grüße"), fails("BadField.hints"));
    c.add("nine_hints", hints(&["h"; 9].join(",")), fails("Malformed.TooLong"));
    c.add("hint_of_257_bytes", hints(&"h".repeat(257)), fails("Malformed.TooLong"));
    let name = |v: &str| input(&with_field(&line, "from", v), bob, NOW);
    c.add("name_with_a_space", name("al ice"), fails("BadName"));
    c.add("name_of_33_bytes", name(&"a".repeat(33)), fails("BadName"));
    c.add("name_with_dot_dot", name("a..b"), fails("BadName"));
    c.add("name_with_a_colon", name("a:b"), fails("BadName"));
    c.add("empty_name", name(""), fails("BadName"));
    c.add(
        "order_fields_before_trailing_field",
        input(&format!("{} | x:1", with_field(&line, "from", "")), bob, NOW),
        fails("BadName"),
    );
    let to_self = with_field(&line, "to", &ALICE.id().to_hex());
    c.add("addressed_to_its_sender", input(&to_self, ALICE.name, NOW), fails("Malformed.Invalid"));
    // A valid shape that is not what alice signed.
    let altered = edited_request(req, |r| r.from.name = "alicf".into()).to_line();
    c.add("altered_name", input(&altered, bob, NOW), fails("BadSignature"));
    let retargeted = edited_request(req, |r| r.to = BOB_NEXT.id()).to_line();
    c.add("altered_target", input(&retargeted, BOB_NEXT.name, NOW), fails("BadSignature"));
    let rekeyed = edited_request(req, |r| r.from.encrypt_pub = BOB_NEXT.identity().encrypt_pub()).to_line();
    c.add("altered_encrypt_pub", input(&rekeyed, bob, NOW), fails("BadSignature"));
    let moved = edited_request(req, |r| r.ts_ms += 1).to_line();
    c.add("altered_ts", input(&moved, bob, NOW), fails("BadSignature"));
    let other_domain =
        edited_request(req, |r| r.signature = ALICE.identity().sign(FRIEND_ACCEPT_DOMAIN, &r.signed_bytes()));
    c.add("signed_in_the_accept_domain", input(&other_domain.to_line(), bob, NOW), fails("BadSignature"));
    c.add("stale_by_one_ms", input(&line, bob, NOW + MAX_SKEW_MS + 1), fails("Stale"));
    c.add("from_the_future_by_one_ms", input(&line, bob, NOW - MAX_SKEW_MS - 1), fails("Stale"));
    c.add("for_another_key", input(&line, BOB_NEXT.name, NOW), Fails("NotForMe", UNAUTHORIZED));
    c.add(
        "order_shape_before_signature",
        input(&with_field(&altered, "hints", "%41"), bob, NOW),
        fails("BadField.hints"),
    );
    c.add(
        "order_signature_before_freshness",
        input(&altered, bob, NOW + MAX_SKEW_MS + 1),
        fails("BadSignature"),
    );
    c.add(
        "order_freshness_before_target",
        input(&line, BOB_NEXT.name, NOW + MAX_SKEW_MS + 1),
        fails("Stale"),
    );
    c
}

pub fn request_bytes<'a>(world: &World, identities: &'a Value) -> Cases<'a> {
    let mut c = Cases::new("friend_request", identities);
    let req = &world.friend_request;
    let bytes = req.to_bytes();
    let input =
        |b: &[u8], me: &str, now_ms: u64| json!({ "request": hex::encode(b), "me": me, "now_ms": now_ms });
    let bob = BOB.name;
    let fails = |e| Fails(e, INVALID);
    c.add("alices_request_to_bob", input(&bytes, bob, NOW), Accepted);
    c.add("truncated_by_one_byte", input(&bytes[..bytes.len() - 1], bob, NOW), fails("Malformed.Truncated"));
    c.add("only_the_target", input(&bytes[..32], bob, NOW), fails("Malformed.Truncated"));
    c.add("trailing_byte", input(&[&bytes[..], &[0]].concat(), bob, NOW), fails("Malformed.TrailingBytes"));
    c.add("over_2400_bytes", input(&vec![0; MAX_FRIEND_BYTES + 1], bob, NOW), fails("TooLarge"));
    let name_at = 32;
    let mut long_name = bytes.clone();
    long_name[name_at..name_at + 4].copy_from_slice(&33u32.to_be_bytes());
    c.add("name_length_33", input(&long_name, bob, NOW), fails("Malformed.TooLong"));
    let mut not_utf8 = bytes.clone();
    not_utf8[name_at + 4] = 0xff;
    c.add("name_not_utf8", input(&not_utf8, bob, NOW), fails("Malformed.InvalidUtf8"));
    let mut spaced = bytes.clone();
    spaced[name_at + 4] = b' ';
    c.add("name_with_a_space", input(&spaced, bob, NOW), fails("Malformed.Invalid"));
    let empty_hint = edited_request(req, |r| r.from.hints = vec![String::new()]).to_bytes();
    c.add("empty_hint", input(&empty_hint, bob, NOW), fails("Malformed.Invalid"));
    let nine = edited_request(req, |r| r.from.hints = vec!["h".into(); 9]).to_bytes();
    c.add("nine_hints", input(&nine, bob, NOW), fails("Malformed.TooLong"));
    let to_self = edited_request(req, |r| r.to = r.from.key).to_bytes();
    c.add("addressed_to_its_sender", input(&to_self, ALICE.name, NOW), fails("Malformed.Invalid"));
    c.add(
        "order_invalid_before_trailing",
        input(&[&to_self[..], &[0]].concat(), bob, NOW),
        fails("Malformed.Invalid"),
    );
    let altered = edited_request(req, |r| drop(r.from.hints.pop())).to_bytes();
    c.add("altered_hints", input(&altered, bob, NOW), fails("BadSignature"));
    c.add("stale", input(&bytes, bob, NOW + 3_600_000), fails("Stale"));
    c.add("for_another_key", input(&bytes, BOB_NEXT.name, NOW), Fails("NotForMe", UNAUTHORIZED));
    c
}

pub fn accept_bytes<'a>(world: &World, identities: &'a Value) -> Cases<'a> {
    let mut c = Cases::new("friend_accept", identities);
    let (req, acc) = (&world.friend_request, &world.friend_accept);
    let bytes = acc.to_bytes();
    let input = |b: &[u8], me: &str, now_ms: u64, pending: &[&FriendRequest]| {
        json!({
            "accept": hex::encode(b),
            "me": me,
            "now_ms": now_ms,
            "pending": pending.iter().map(|p| hex::encode(p.to_bytes())).collect::<Vec<_>>(),
        })
    };
    let alice = ALICE.name;
    let later = acc.ts_ms;
    let fails = |e| Fails(e, INVALID);
    // alice also asked bob_next; that request is pending too.
    let to_next =
        FriendRequest::new(&ALICE.identity(), "alice", vec![], BOB_NEXT.id(), NOW).expect("request");
    c.add("bobs_accept", input(&bytes, alice, later, &[req]), Accepted);
    c.add("among_other_pending_requests", input(&bytes, alice, later, &[&to_next, req]), Accepted);
    c.add("five_minutes_later", input(&bytes, alice, later + MAX_SKEW_MS, &[req]), Accepted);
    c.add("no_pending_request", input(&bytes, alice, later, &[]), fails("UnknownRequest"));
    c.add("only_another_pending_request", input(&bytes, alice, later, &[&to_next]), fails("UnknownRequest"));
    // A "pending" request that alice did not write, with the signature bob's accept names.
    let not_ours = edited_request(req, |r| r.from = FriendCard { key: BOB_NEXT.id(), ..r.from.clone() });
    c.add("pending_request_not_ours", input(&bytes, alice, later, &[&not_ours]), fails("UnknownRequest"));
    // bob_next saw alice's request to bob (in a topic) and accepts it himself.
    let bystander = BOB_NEXT.identity();
    let mut hijack = edited_accept(acc, |a| {
        a.from = FriendCard {
            name: "bob".into(),
            key: bystander.public_id(),
            encrypt_pub: bystander.encrypt_pub(),
            hints: vec![],
        };
    });
    hijack.signature = bystander.sign(FRIEND_ACCEPT_DOMAIN, &hijack.signed_bytes());
    c.add(
        "accepted_by_a_bystander",
        input(&hijack.to_bytes(), alice, later, &[req]),
        Fails("WrongAccepter", UNAUTHORIZED),
    );
    let altered = edited_accept(acc, |a| a.from.hints.clear()).to_bytes();
    c.add("altered_hints", input(&altered, alice, later, &[req]), fails("BadSignature"));
    let repointed = edited_accept(acc, |a| a.request_sig = to_next.signature).to_bytes();
    c.add(
        "request_sig_swapped_after_signing",
        input(&repointed, alice, later, &[&to_next]),
        fails("BadSignature"),
    );
    c.add("stale", input(&bytes, alice, later + MAX_SKEW_MS + 1, &[req]), fails("Stale"));
    c.add("from_the_future", input(&bytes, alice, later - MAX_SKEW_MS - 1, &[req]), fails("Stale"));
    c.add("for_another_key", input(&bytes, BOB_NEXT.name, later, &[req]), Fails("NotForMe", UNAUTHORIZED));
    c.add(
        "truncated_request_sig",
        input(&bytes[..bytes.len() - 80], alice, later, &[req]),
        fails("Malformed.Truncated"),
    );
    c.add(
        "trailing_byte",
        input(&[&bytes[..], &[1]].concat(), alice, later, &[req]),
        fails("Malformed.TrailingBytes"),
    );
    c.add(
        "a_request_as_an_accept",
        input(&req.to_bytes(), alice, later, &[req]),
        fails("Malformed.Truncated"),
    );
    c.add("order_signature_before_pending", input(&altered, alice, later, &[]), fails("BadSignature"));
    c.add(
        "order_target_before_pending",
        input(&bytes, BOB_NEXT.name, later, &[]),
        Fails("NotForMe", UNAUTHORIZED),
    );
    c
}

pub fn accept_line<'a>(world: &World, identities: &'a Value) -> Cases<'a> {
    let mut c = Cases::new("friend_accept_line", identities);
    let (req, acc) = (&world.friend_request, &world.friend_accept);
    let input = |line: &str, now_ms: u64, pending: &FriendRequest| json!({ "line": line, "me": ALICE.name, "now_ms": now_ms, "pending": pending.to_line() });
    let later = acc.ts_ms;
    let line = acc.to_line();
    c.add("bobs_accept", input(&line, later, req), Accepted);
    c.add("surrounding_whitespace", input(&format!("\n{line}  "), later, req), Accepted);
    // alice asked bob again later; the accept answers the first request.
    let again = FriendRequest::new(&ALICE.identity(), "alice", vec![], BOB.id(), NOW + 10).expect("request");
    c.add("another_request_to_the_same_key", input(&line, later, &again), Fails("RequestMismatch", INVALID));
    c.add("a_request_line", input(&req.to_line(), later, req), Fails("WrongKind", INVALID));
    let sig = hex::encode(acc.request_sig);
    c.add(
        "missing_request_sig",
        input(&line.replace(&format!(" | requestSig:{sig}"), ""), later, req),
        Fails("BadField.requestSig", INVALID),
    );
    c
}
