use proptest::prelude::*;

use super::line::{FriendLine, MAX_LINE_BYTES};
use super::*;

const NOW: u64 = 1_700_000_000_000;

fn alice() -> Identity {
    Identity::from_seeds([0xa1; 32], [0xa2; 32], 0)
}

fn bob() -> Identity {
    Identity::from_seeds([0xb1; 32], [0xb2; 32], 0)
}

fn mallory() -> Identity {
    Identity::from_seeds([0xd1; 32], [0xd2; 32], 0)
}

/// alice asks bob.
fn request() -> FriendRequest {
    FriendRequest::new(&alice(), "alice", vec!["127.0.0.1:7438".into()], bob().public_id(), NOW).unwrap()
}

/// bob accepts alice's request, a second later.
fn accept(req: &FriendRequest) -> FriendAccept {
    FriendAccept::new(&bob(), "bob", vec!["10.0.0.2:7438".into()], req, NOW + 1000).unwrap()
}

#[test]
fn a_request_round_trips_as_bytes_and_as_a_line_and_verifies_at_its_target() {
    let req = request();
    assert_eq!(FriendRequest::parse(&req.to_bytes()).unwrap(), req);
    let line = req.to_line();
    assert!(line.starts_with("FRIEND_REQUEST | to:"), "{line}");
    assert!(
        line.contains(" | from:alice | pubkey:") && line.contains(" | hints:127.0.0.1:7438 | ts:"),
        "{line}"
    );
    assert_eq!(FriendRequest::parse_line(&line).unwrap(), req);
    assert_eq!(FriendRequest::parse_line(&format!(" \t{line}\r\n ")).unwrap(), req);
    assert_eq!(FriendLine::parse(&line).unwrap(), FriendLine::Request(req.clone()));
    req.verify(&bob().public_id(), NOW).unwrap();
    assert_eq!((req.from.key, req.from.encrypt_pub), (alice().public_id(), alice().encrypt_pub()));
}

#[test]
fn an_accept_round_trips_and_verifies_against_the_pending_request() {
    let req = request();
    let acc = accept(&req);
    assert_eq!(FriendAccept::parse(&acc.to_bytes()).unwrap(), acc);
    assert_eq!(FriendAccept::parse_line(&acc.to_line()).unwrap(), acc);
    assert_eq!(acc.request_sig, req.signature);
    assert_eq!(acc.to, alice().public_id());
    acc.verify(&alice().public_id(), NOW + 2000, &req).unwrap();
    let other = FriendRequest::new(&alice(), "alice", vec![], mallory().public_id(), NOW).unwrap();
    let found = acc.verify_among(&alice().public_id(), NOW, [&other, &req]).unwrap();
    assert_eq!(found, &req);
}

/// One change to a field, made after signing.
type Edit<T> = Box<dyn Fn(&mut T)>;

#[test]
fn every_altered_request_field_breaks_the_signature() {
    let edits: Vec<(&str, Edit<FriendRequest>)> = vec![
        ("to", Box::new(|r| r.to = mallory().public_id())),
        ("from", Box::new(|r| r.from.name = "alicf".into())),
        ("pubkey", Box::new(|r| r.from.key = mallory().public_id())),
        ("encryptPub", Box::new(|r| r.from.encrypt_pub[0] ^= 1)),
        ("hints", Box::new(|r| r.from.hints.push("10.6.6.6:1".into()))),
        ("ts", Box::new(|r| r.ts_ms += 1)),
        ("sig", Box::new(|r| r.signature[5] ^= 1)),
    ];
    for (field, edit) in edits {
        let mut r = request();
        edit(&mut r);
        // The altered request still has a valid shape and survives the line form.
        let r = FriendRequest::parse_line(&r.to_line()).unwrap();
        let me = if field == "to" { mallory().public_id() } else { bob().public_id() };
        assert_eq!(r.verify(&me, NOW), Err(FriendError::BadSignature), "altered {field}");
    }
    // Signed by another key while naming alice's.
    let mut forged = request();
    forged.signature = mallory().sign(FRIEND_REQUEST_DOMAIN, &forged.signed_bytes());
    assert_eq!(forged.verify(&bob().public_id(), NOW), Err(FriendError::BadSignature));
    // Alice's signature over the same bytes in another domain.
    let mut other_domain = request();
    other_domain.signature = alice().sign(FRIEND_ACCEPT_DOMAIN, &other_domain.signed_bytes());
    assert_eq!(other_domain.verify(&bob().public_id(), NOW), Err(FriendError::BadSignature));
}

#[test]
fn every_altered_accept_field_breaks_the_signature() {
    let req = request();
    let edits: Vec<(&str, Edit<FriendAccept>)> = vec![
        ("from", Box::new(|a| a.from.name = "bobby".into())),
        ("encryptPub", Box::new(|a| a.from.encrypt_pub[31] ^= 1)),
        ("hints", Box::new(|a| a.from.hints.clear())),
        ("ts", Box::new(|a| a.ts_ms -= 1)),
        ("sig", Box::new(|a| a.signature[63] ^= 1)),
    ];
    for (field, edit) in edits {
        let mut a = accept(&req);
        edit(&mut a);
        assert_eq!(a.verify(&alice().public_id(), NOW, &req), Err(FriendError::BadSignature), "{field}");
    }
    // A request signature swapped in after signing: still a forgery, not a mismatch.
    let other = FriendRequest::new(&alice(), "alice", vec![], bob().public_id(), NOW + 5).unwrap();
    let mut swapped = accept(&req);
    swapped.request_sig = other.signature;
    assert_eq!(swapped.verify(&alice().public_id(), NOW, &other), Err(FriendError::BadSignature));
    // A request's signature bytes can never serve as an accept: the domains differ.
    let mut a = accept(&req);
    a.signature = bob().sign(FRIEND_REQUEST_DOMAIN, &a.signed_bytes());
    assert_eq!(a.verify(&alice().public_id(), NOW, &req), Err(FriendError::BadSignature));
}

#[test]
fn stale_requests_and_accepts_are_refused_in_the_past_and_in_the_future() {
    let req = request();
    let me = bob().public_id();
    req.verify(&me, NOW + MAX_SKEW_MS).unwrap();
    req.verify(&me, NOW - MAX_SKEW_MS).unwrap();
    for now in [NOW + MAX_SKEW_MS + 1, NOW - MAX_SKEW_MS - 1, NOW + 86_400_000, 0] {
        assert_eq!(req.verify(&me, now), Err(FriendError::Stale { ts_ms: NOW, now_ms: now }));
    }
    let acc = accept(&req);
    let alice_id = alice().public_id();
    acc.verify(&alice_id, NOW + 1000 + MAX_SKEW_MS, &req).unwrap();
    for now in [NOW + 1001 + MAX_SKEW_MS, NOW + 999 - MAX_SKEW_MS] {
        assert!(matches!(acc.verify(&alice_id, now, &req), Err(FriendError::Stale { .. })), "{now}");
        assert!(matches!(acc.verify_among(&alice_id, now, [&req]), Err(FriendError::Stale { .. })));
    }
}

#[test]
fn a_request_or_accept_for_another_key_is_refused() {
    let req = request();
    assert_eq!(req.verify(&mallory().public_id(), NOW), Err(FriendError::NotForMe { to: bob().public_id() }));
    let acc = accept(&req);
    let err = acc.verify(&mallory().public_id(), NOW, &req);
    assert_eq!(err, Err(FriendError::NotForMe { to: alice().public_id() }));
    // Nobody can accept a request that was not addressed to them.
    let err = FriendAccept::new(&mallory(), "mallory", vec![], &req, NOW);
    assert_eq!(err, Err(FriendError::NotForMe { to: bob().public_id() }));
}

#[test]
fn an_accept_of_another_request_is_refused() {
    let req = request();
    let acc = accept(&req);
    // A second request alice sent bob later (the accept answers the first).
    let later = FriendRequest::new(&alice(), "alice", vec![], bob().public_id(), NOW + 10).unwrap();
    assert_eq!(acc.verify(&alice().public_id(), NOW, &later), Err(FriendError::RequestMismatch));
    assert_eq!(acc.verify_among(&alice().public_id(), NOW, [&later]), Err(FriendError::UnknownRequest));
    assert_eq!(acc.verify_among(&alice().public_id(), NOW, []), Err(FriendError::UnknownRequest));
    // A "pending request" this node did not write is no proof of anything.
    let not_ours =
        FriendRequest { from: FriendCard { key: mallory().public_id(), ..req.from.clone() }, ..req };
    assert_eq!(acc.verify(&alice().public_id(), NOW, &not_ours), Err(FriendError::RequestMismatch));
    assert_eq!(acc.verify_among(&alice().public_id(), NOW, [&not_ours]), Err(FriendError::UnknownRequest));
}

#[test]
fn an_accept_from_a_key_other_than_the_one_asked_is_refused() {
    // Mallory saw alice's request to bob (it travelled in a topic) and answers it herself.
    let req = request();
    let mut forged = FriendAccept {
        to: alice().public_id(),
        from: FriendCard {
            name: "bob".into(),
            key: mallory().public_id(),
            encrypt_pub: mallory().encrypt_pub(),
            hints: vec![],
        },
        request_sig: req.signature,
        ts_ms: NOW,
        signature: [0; 64],
    };
    forged.signature = mallory().sign(FRIEND_ACCEPT_DOMAIN, &forged.signed_bytes());
    let wrong = FriendError::WrongAccepter { asked: bob().public_id(), answered: mallory().public_id() };
    assert_eq!(forged.verify(&alice().public_id(), NOW, &req), Err(wrong.clone()));
    assert_eq!(forged.verify_among(&alice().public_id(), NOW, [&req]), Err(wrong));
}

#[test]
fn truncated_or_trailing_bytes_are_refused() {
    let req = request().to_bytes();
    let acc = accept(&request()).to_bytes();
    for cut in [0, 1, 31, 40, req.len() - 1] {
        assert!(
            matches!(
                FriendRequest::parse(&req[..cut]),
                Err(FriendError::Malformed(CodecError::Truncated { .. }))
            ),
            "cut {cut}"
        );
    }
    for cut in [1, acc.len() - 65, acc.len() - 1] {
        assert!(matches!(
            FriendAccept::parse(&acc[..cut]),
            Err(FriendError::Malformed(CodecError::Truncated { .. }))
        ));
    }
    let longer = |b: &[u8]| [b, &[0][..]].concat();
    assert_eq!(
        FriendRequest::parse(&longer(&req)),
        Err(FriendError::Malformed(CodecError::TrailingBytes(1)))
    );
    assert_eq!(FriendAccept::parse(&longer(&acc)), Err(FriendError::Malformed(CodecError::TrailingBytes(1))));
    // A request is not an accept, nor the other way round.
    assert!(FriendAccept::parse(&req).is_err());
    assert!(FriendRequest::parse(&acc).is_err());
}

#[test]
fn oversized_fields_are_refused_when_signing_and_when_decoding() {
    let (a, to) = (alice(), bob().public_id());
    let new = |name: &str, hints: Vec<String>| FriendRequest::new(&a, name, hints, to, NOW);
    assert!(matches!(new(&"a".repeat(MAX_FRIEND_NAME + 1), vec![]), Err(FriendError::BadName { .. })));
    new(&"a".repeat(MAX_FRIEND_NAME), vec![]).unwrap();
    let too_long =
        |what| move |e| matches!(e, FriendError::Malformed(CodecError::TooLong { what: w, .. }) if w == what);
    assert!(new("alice", vec!["h".into(); MAX_HINTS + 1]).is_err_and(too_long("hint list")));
    assert!(new("alice", vec!["h".repeat(MAX_HINT_LEN + 1)]).is_err_and(too_long("address hint")));
    assert_eq!(
        new("alice", vec![String::new()]),
        Err(FriendError::Malformed(CodecError::Invalid("empty address hint")))
    );
    // The same fields, encoded by hand, do not decode: a peer cannot send what we would not sign.
    let bytes_with = |edit: &dyn Fn(&mut FriendRequest)| {
        let mut r = request();
        edit(&mut r);
        r.to_bytes()
    };
    let parse = |b: Vec<u8>| FriendRequest::parse(&b);
    assert!(parse(bytes_with(&|r| r.from.name = "a".repeat(33))).is_err_and(too_long("friend name")));
    assert!(parse(bytes_with(&|r| r.from.hints = vec!["h".into(); 9])).is_err_and(too_long("hint list")));
    assert!(
        parse(bytes_with(&|r| r.from.hints = vec!["h".repeat(257)])).is_err_and(too_long("address hint"))
    );
    let invalid = |what| move |e| e == FriendError::Malformed(CodecError::Invalid(what));
    assert!(parse(bytes_with(&|r| r.from.name = "a b".into())).is_err_and(invalid("friend name")));
    assert!(parse(bytes_with(&|r| r.from.name = String::new())).is_err_and(invalid("friend name")));
    assert!(
        parse(bytes_with(&|r| r.from.hints = vec![String::new()])).is_err_and(invalid("empty address hint"))
    );
    let to_self = bytes_with(&|r| r.to = r.from.key);
    assert!(parse(to_self).is_err_and(invalid("friend request addressed to its own sender")));
    assert_eq!(
        parse(vec![0; MAX_FRIEND_BYTES + 1]),
        Err(FriendError::TooLarge { len: MAX_FRIEND_BYTES + 1 })
    );
    assert!(matches!(
        FriendRequest::new(&a, "alice", vec![], a.public_id(), NOW),
        Err(FriendError::Malformed(CodecError::Invalid(_)))
    ));
}

#[test]
fn the_largest_valid_accept_fits_both_limits() {
    let hints: Vec<String> = (0..MAX_HINTS).map(|i| format!("{i}").repeat(MAX_HINT_LEN)).collect();
    let big = FriendRequest::new(
        &alice(),
        &"a".repeat(MAX_FRIEND_NAME),
        hints.clone(),
        bob().public_id(),
        u64::MAX,
    )
    .unwrap();
    let acc = FriendAccept::new(&bob(), &"b".repeat(MAX_FRIEND_NAME), hints.clone(), &big, u64::MAX).unwrap();
    assert_eq!(acc.to_bytes().len(), 2350);
    assert!(FriendAccept::parse(&acc.to_bytes()).is_ok());
    // Hints made only of bytes that must be escaped triple in the line.
    let escaped: Vec<String> = (0..MAX_HINTS).map(|_| " ".repeat(MAX_HINT_LEN)).collect();
    let big = FriendRequest { from: FriendCard { hints: escaped.clone(), ..big.from }, ..big };
    let acc = FriendAccept { from: FriendCard { hints: escaped, ..acc.from }, ..acc };
    let line = acc.to_line();
    assert!(line.len() <= MAX_LINE_BYTES, "{}", line.len());
    assert_eq!(FriendAccept::parse_line(&line).unwrap(), acc);
    assert_eq!(FriendRequest::parse_line(&big.to_line()).unwrap(), big);
}

#[test]
fn friend_names_are_short_plain_and_cannot_escape_a_session_name() {
    for ok in ["alice", "Bob", "trusted-bot", "a.b_c", "0", "_x", &"z".repeat(32)] {
        validate_friend_name(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for bad in ["", ".x", "-x", "a..b", "a b", "a|b", "a:b", "a(b)", "é", "a/b", "a\0", &"z".repeat(33)] {
        assert!(matches!(validate_friend_name(bad), Err(FriendError::BadName { .. })), "{bad:?}");
    }
}

fn line_of(fields: &[(&str, String)], tag: &str) -> String {
    let mut s = tag.to_string();
    for (k, v) in fields {
        s.push_str(&format!(" | {k}:{v}"));
    }
    s
}

/// The request's line as (field, value) pairs, to break one at a time.
fn request_fields(r: &FriendRequest) -> Vec<(&'static str, String)> {
    vec![
        ("to", r.to.to_hex()),
        ("from", r.from.name.clone()),
        ("pubkey", r.from.key.to_hex()),
        ("encryptPub", hex::encode(r.from.encrypt_pub)),
        ("hints", "127.0.0.1:7438".into()),
        ("ts", r.ts_ms.to_string()),
        ("sig", hex::encode(r.signature)),
    ]
}

#[test]
fn malformed_lines_are_refused_with_the_field_at_fault() {
    let r = request();
    let fields = request_fields(&r);
    assert_eq!(FriendRequest::parse_line(&line_of(&fields, "FRIEND_REQUEST")).unwrap(), r);
    // Tolerated: whitespace around each bar.
    assert_eq!(FriendRequest::parse_line(&r.to_line().replace(" | ", "|")).unwrap(), r);
    assert_eq!(FriendRequest::parse_line(&r.to_line().replace(" | ", "  |\t")).unwrap(), r);
    let err = |line: &str| FriendRequest::parse_line(line).unwrap_err();
    let bad = |field: &'static str| move |e: FriendError| matches!(e, FriendError::BadField { field: f, .. } if f == field);
    assert_eq!(err(""), FriendError::NotAFriendLine);
    assert_eq!(err("hello there"), FriendError::NotAFriendLine);
    assert_eq!(
        err(&r.to_line().replacen("FRIEND_REQUEST", "friend_request", 1)),
        FriendError::NotAFriendLine
    );
    let acc_line = accept(&r).to_line();
    assert_eq!(err(&acc_line), FriendError::WrongKind { expected: "FRIEND_REQUEST", found: "FRIEND_ACCEPT" });
    assert!(matches!(FriendAccept::parse_line(&r.to_line()), Err(FriendError::WrongKind { .. })));
    assert!(matches!(
        err(&format!("FRIEND_REQUEST | {}", "x".repeat(MAX_LINE_BYTES))),
        FriendError::LineTooLong { .. }
    ));
    for (i, (field, _)) in fields.iter().enumerate() {
        // Missing.
        let mut missing = fields.clone();
        missing.remove(i);
        assert!(bad(field)(err(&line_of(&missing, "FRIEND_REQUEST"))), "missing {field}");
        // Misnamed.
        let mut renamed = fields.clone();
        renamed[i].0 = "other";
        assert!(bad(field)(err(&line_of(&renamed, "FRIEND_REQUEST"))), "{field}");
    }
    let mut swapped = fields.clone();
    swapped.swap(5, 6);
    assert!(bad("ts")(err(&line_of(&swapped, "FRIEND_REQUEST"))));
    let mut extra = fields.clone();
    extra.push(("nonce", "00".into()));
    assert!(bad("sig")(err(&line_of(&extra, "FRIEND_REQUEST"))));
    assert!(bad("sig")(err(&format!("{} |", r.to_line()))));
    let with = |i: usize, v: &str| {
        let mut f = fields.clone();
        f[i].1 = v.to_string();
        err(&line_of(&f, "FRIEND_REQUEST"))
    };
    assert!(bad("to")(with(0, &r.to.to_hex().to_uppercase())));
    assert!(bad("to")(with(0, &r.to.to_hex()[..62])));
    assert!(bad("to")(with(0, &r.to.to_url())));
    assert!(matches!(with(1, "al ice"), FriendError::BadName { .. }));
    assert!(matches!(with(1, ""), FriendError::BadName { .. }));
    assert!(bad("encryptPub")(with(3, &format!("{}0", hex::encode(r.from.encrypt_pub)))));
    for ts in ["", "01", "+1", "-1", "1e3", "18446744073709551616", " 1 2"] {
        assert!(bad("ts")(with(5, ts)), "{ts:?}");
    }
    assert!(bad("sig")(with(6, "00")));
    for hints in ["a,,b", ",", "a b", "%41", "%2c", "%2", "%", "é", "%FF"] {
        assert!(bad("hints")(with(4, hints)), "{hints:?}");
    }
    assert!(matches!(with(4, &["h"; 9].join(",")), FriendError::Malformed(CodecError::TooLong { .. })));
}

#[test]
fn hints_with_any_text_survive_the_line() {
    let hints = vec![
        "relay https://r.example/a|b,c".to_string(),
        "100%".into(),
        "Grüße 👋".into(),
        "[::1]:7438".into(),
    ];
    let r = FriendRequest::new(&alice(), "alice", hints.clone(), bob().public_id(), NOW).unwrap();
    let line = r.to_line();
    assert!(
        line.contains(
            "hints:relay%20https://r.example/a%7Cb%2Cc,100%25,Gr%C3%BC%C3%9Fe%20%F0%9F%91%8B,[::1]:7438 |"
        ),
        "{line}"
    );
    let back = FriendRequest::parse_line(&line).unwrap();
    assert_eq!(back.from.hints, hints);
    back.verify(&bob().public_id(), NOW).unwrap();
}

proptest! {
    #[test]
    fn any_request_survives_bytes_and_line(
        name in "[A-Za-z0-9_][A-Za-z0-9_-]{0,31}",
        hints in prop::collection::vec("\\PC{1,40}", 0..4),
        ts in any::<u64>(),
    ) {
        let hints: Vec<String> = hints.into_iter().filter(|h| h.len() <= MAX_HINT_LEN).collect();
        let r = FriendRequest::new(&alice(), &name, hints, bob().public_id(), ts).unwrap();
        prop_assert_eq!(FriendRequest::parse(&r.to_bytes()).unwrap(), r.clone());
        prop_assert_eq!(FriendRequest::parse_line(&r.to_line()).unwrap(), r.clone());
        prop_assert!(r.verify(&bob().public_id(), ts).is_ok());
    }

    #[test]
    fn random_lines_never_panic(s in "\\PC{0,300}") {
        let _ = FriendLine::parse(&s);
        let _ = FriendLine::parse(&format!("FRIEND_ACCEPT | {s}"));
    }

    #[test]
    fn every_valid_friend_name_makes_a_valid_session_name(name in "[A-Za-z0-9._-]{1,32}") {
        if validate_friend_name(&name).is_ok() {
            let session = format!("friend:p2p:{name}({})", alice().public_id().short());
            prop_assert!(wopr_store::SessionName::new(&session).is_ok(), "{}", session);
            prop_assert!(wopr_store::validate_peer_name(&name).is_ok());
        }
    }
}
