//! `docs/vectors/rendezvous.json`: every byte of `docs/PROTOCOL.md` §16 from fixed inputs, plus values
//! that must be refused with a named error and entries that must be refused one by one. Generated here,
//! compared with the committed file, and checked by `docs/vectors/verify_rendezvous.py`, written from
//! the protocol text alone. After an intended change: `WOPR_WRITE_VECTORS=1 cargo test -p
//! wopr-rendezvous --test rendezvous vectors`, then review the diff.

use std::path::PathBuf;
use std::process::Command;

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{AeadInOut, Key, KeyInit, Nonce};
use mainline::MutableItem;
use serde_json::{Value, json};
use wopr_identity::Identity;
use wopr_proto::codec::Writer;
use wopr_rendezvous::entry::MEMBER_DOMAIN;
use wopr_rendezvous::value::{self, MAX_VALUE_BYTES, NONCE_LEN};
use wopr_rendezvous::{
    BUCKETS, EntryRejected, MEMBER_TTL_MS, MemberEntry, RecordError, SlotKeys, TopicKeys, slot_of,
};

const FILE: &str = "rendezvous.json";
const TOPIC: &str = "wopr rendezvous vector topic";
const NOW: u64 = 1_700_000_000_000;
const BUCKET: usize = 1;
const NONCE: [u8; NONCE_LEN] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
const SKEW_MS: u64 = 5 * 60 * 1000;

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/vectors")
}

fn identity(seed: u8) -> Identity {
    Identity::from_seeds([seed; 32], [seed.wrapping_add(1); 32], 0)
}

fn encode(entries: &[MemberEntry]) -> Vec<u8> {
    let mut w = Writer::new();
    w.list(entries, |w, e| e.encode(w));
    w.into_bytes()
}

/// Seals any plaintext as §16.3 says, for values an honest writer would never produce.
fn seal_raw(keys: &SlotKeys, bucket: usize, plaintext: &[u8]) -> Vec<u8> {
    let mut buf = plaintext.to_vec();
    let cipher = Aes256Gcm::new(&Key::<Aes256Gcm>::from(*keys.seal_key()));
    let tag = cipher
        .encrypt_inout_detached(
            &Nonce::<Aes256Gcm>::from(NONCE),
            keys.salt(bucket),
            buf.as_mut_slice().into(),
        )
        .unwrap();
    [NONCE.as_slice(), &buf, &tag].concat()
}

fn record_error_name(e: &RecordError) -> String {
    match e {
        RecordError::Codec(c) => format!("{c:?}").split([' ', '(', '{']).next().unwrap().to_string(),
        other => format!("{other:?}").split([' ', '(', '{']).next().unwrap().to_string(),
    }
}

fn entry_result_name(r: &Result<wopr_rendezvous::Member, EntryRejected>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => format!("{e:?}").split([' ', '(', '{']).next().unwrap().to_string(),
    }
}

fn generate() -> String {
    let topic = TopicKeys::derive(TOPIC).unwrap();
    let slot = slot_of(NOW);
    let keys = topic.slot(slot);
    let binding = topic.binding();

    // Two members, newest first as a merge orders them.
    let m1 = identity(0x31);
    let m2 = identity(0x41);
    let e1 = MemberEntry::sign(
        &m1,
        &topic,
        &["192.0.2.1:4433".into(), "https://relay.example/".into()],
        NOW - 1_000,
    )
    .unwrap();
    let e2 = MemberEntry::sign(&m2, &topic, &["198.51.100.2:4433".into()], NOW - 5_000).unwrap();
    let member_json = |name: &str, seed: u8, id: &Identity, e: &MemberEntry| {
        let mut w = Writer::new();
        e.encode(&mut w);
        json!({
            "name": name,
            "seed": hex::encode([seed; 32]),
            "key": id.public_id().to_hex(),
            "seen_ms": e.seen_ms,
            "hints": e.hints,
            "home_bucket": keys.home_bucket(&e.key),
            "signed_bytes": hex::encode(e.signed_bytes(&binding)),
            "signature": hex::encode(e.signature),
            "entry": hex::encode(w.as_bytes()),
        })
    };

    let entries = vec![e1.clone(), e2.clone()];
    let sealed = value::seal(&keys, BUCKET, &entries, NONCE).unwrap();
    let item = MutableItem::new(keys.signing_key().clone(), &sealed, 1, Some(keys.salt(BUCKET)));
    let signable = [
        b"4:salt16:".as_slice(),
        keys.salt(BUCKET),
        b"3:seqi1e1:v",
        sealed.len().to_string().as_bytes(),
        b":",
        &sealed,
    ]
    .concat();
    let lookup_now = NOW + 1_000;
    let found: Vec<String> = value::open(&keys, BUCKET, &sealed)
        .unwrap()
        .iter()
        .filter_map(|e| e.verify(&topic, lookup_now).ok())
        .map(|m| m.key.to_hex())
        .collect();

    // Values refused as a whole, each with the error §16.3 names.
    let other_slot = topic.slot(slot + 1);
    let mut bad_hint = e1.clone();
    bad_hint.hints = vec!["has space".into()];
    let mut empty_hint = e1.clone();
    empty_hint.hints = vec![String::new()];
    let mut long_hint = e1.clone();
    long_hint.hints = vec!["h".repeat(97)];
    let mut five_hints = e1.clone();
    five_hints.hints = (0..5).map(|i| format!("10.0.0.{i}:1")).collect();
    let good_plain = encode(&entries);
    let mut overcount = encode(&entries[..1]);
    overcount[1] = 2;
    let mut tampered = sealed.clone();
    *tampered.last_mut().unwrap() ^= 1;
    let refuse: Vec<(&str, usize, Vec<u8>, &str)> = vec![
        ("tampered tag", BUCKET, tampered, "Unsealed"),
        ("another bucket's value", BUCKET + 1, sealed.clone(), "Unsealed"),
        (
            "the next slot's value",
            BUCKET,
            value::seal(&other_slot, BUCKET, &entries, NONCE).unwrap(),
            "Unsealed",
        ),
        ("shorter than nonce and tag", BUCKET, sealed[..NONCE_LEN + 15].to_vec(), "Unsealed"),
        ("over 1000 bytes", BUCKET, vec![0x5a; MAX_VALUE_BYTES + 1], "TooLarge"),
        ("ten entries", BUCKET, seal_raw(&keys, BUCKET, &10u16.to_be_bytes()), "TooManyEntries"),
        ("count beyond the input", BUCKET, seal_raw(&keys, BUCKET, &overcount), "Truncated"),
        (
            "a trailing byte",
            BUCKET,
            seal_raw(&keys, BUCKET, &[good_plain.as_slice(), &[0]].concat()),
            "TrailingBytes",
        ),
        ("a hint with a space", BUCKET, seal_raw(&keys, BUCKET, &encode(&[bad_hint])), "BadHint"),
        ("an empty hint", BUCKET, seal_raw(&keys, BUCKET, &encode(&[empty_hint])), "BadHint"),
        ("a 97-byte hint", BUCKET, seal_raw(&keys, BUCKET, &encode(&[long_hint])), "TooLong"),
        ("five hints", BUCKET, seal_raw(&keys, BUCKET, &encode(&[five_hints])), "TooLong"),
    ];
    let refuse_json: Vec<Value> = refuse
        .iter()
        .map(|(name, bucket, bytes, error)| {
            let got = value::open(&keys, *bucket, bytes).map(|_| ()).map_err(|e| record_error_name(&e));
            assert_eq!(got, Err(error.to_string()), "{name}");
            json!({"name": name, "bucket": bucket, "value": hex::encode(bytes), "error": error})
        })
        .collect();

    // Entries refused one by one in a value that opens.
    let forger = identity(0x51);
    let mut claims_m1 = MemberEntry::sign(&forger, &topic, &[], NOW).unwrap();
    claims_m1.key = m1.public_id();
    let mut moved = e2.clone();
    moved.hints = vec!["203.0.113.66:4433".into()];
    let elsewhere =
        MemberEntry::sign(&forger, &TopicKeys::derive("another topic").unwrap(), &[], NOW).unwrap();
    let per_entry: Vec<(MemberEntry, &str, &str)> = vec![
        (
            MemberEntry::sign(&forger, &topic, &[], NOW - MEMBER_TTL_MS).unwrap(),
            "exactly at the window's edge",
            "ok",
        ),
        (MemberEntry::sign(&forger, &topic, &[], NOW + SKEW_MS).unwrap(), "exactly at the skew limit", "ok"),
        (claims_m1, "claims another member's key", "BadSignature"),
        (moved, "hints changed after signing", "BadSignature"),
        (elsewhere, "signed for another topic", "BadSignature"),
        (
            MemberEntry::sign(&forger, &topic, &[], NOW - MEMBER_TTL_MS - 1).unwrap(),
            "1 ms older than the window",
            "Stale",
        ),
        (
            MemberEntry::sign(&forger, &topic, &[], NOW + SKEW_MS + 1).unwrap(),
            "1 ms past the skew limit",
            "FromTheFuture",
        ),
    ];
    let checked_entries: Vec<MemberEntry> = per_entry.iter().map(|(e, _, _)| e.clone()).collect();
    let checked_value = value::seal(&keys, 0, &checked_entries, NONCE).unwrap();
    let results: Vec<Value> = per_entry
        .iter()
        .map(|(e, why, expected)| {
            assert_eq!(entry_result_name(&e.verify(&topic, NOW)), *expected, "{why}");
            json!({"why": why, "result": expected})
        })
        .collect();

    let targets: Vec<String> = (0..BUCKETS)
        .map(|b| hex::encode(MutableItem::target_from_key(&keys.public_key(), Some(keys.salt(b))).as_bytes()))
        .collect();
    let doc = json!({
        "about": "WOPR topic rendezvous vectors; see docs/PROTOCOL.md section 16. All byte strings are lowercase hex.",
        "topic": TOPIC,
        "now_ms": NOW,
        "slot": slot,
        "keys": {
            "binding": hex::encode(binding),
            "sign_seed": hex::encode(keys.signing_key().to_bytes()),
            "bep44_key": hex::encode(keys.public_key()),
            "seal": hex::encode(keys.seal_key()),
            "salts": (0..BUCKETS).map(|b| hex::encode(keys.salt(b))).collect::<Vec<_>>(),
            "targets": targets,
        },
        "signature_domain": MEMBER_DOMAIN,
        "members": [member_json("m1", 0x31, &m1, &e1), member_json("m2", 0x41, &m2, &e2)],
        "value": {
            "bucket": BUCKET,
            "entries": ["m1", "m2"],
            "nonce": hex::encode(NONCE),
            "plaintext": hex::encode(&good_plain),
            "value": hex::encode(&sealed),
            "seq": 1,
            "bep44_signable": hex::encode(&signable),
            "bep44_signature": hex::encode(item.signature()),
        },
        "lookup": {"now_ms": lookup_now, "members": found},
        "refused_values": refuse_json,
        "checked_entries": {"bucket": 0, "now_ms": NOW, "value": hex::encode(&checked_value), "results": results},
    });
    serde_json::to_string_pretty(&doc).unwrap() + "\n"
}

#[test]
fn code_matches_the_committed_rendezvous_vectors() {
    let path = vectors_dir().join(FILE);
    let generated = generate();
    if std::env::var_os("WOPR_WRITE_VECTORS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("docs/vectors/{FILE}: {e}; run with WOPR_WRITE_VECTORS=1 to create it"));
    assert!(
        committed == generated,
        "docs/vectors/{FILE} differs from what the code produces; see the module doc"
    );
}

#[test]
fn the_independent_python_verifier_agrees_with_the_vectors() {
    let dir = vectors_dir();
    let script = dir.join("verify_rendezvous.py");
    let out = Command::new("python3").arg(&script).arg(dir.join(FILE)).output().unwrap_or_else(|e| {
        panic!(
            "cannot run python3 {}: {e}; install Python 3 and `pip install -r docs/vectors/requirements.txt`",
            script.display()
        )
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the independent verifier disagrees ({}):\n{stdout}\n{stderr}", out.status);
    assert!(
        stdout.contains("all rendezvous vectors agree"),
        "unexpected verifier output:\n{stdout}\n{stderr}"
    );
}
