//! Test vectors for protocol v3: generated from fixed seeds, compared with the files in `docs/vectors/`, and
//! checked twice: by this crate's code, and by an independent verifier written from `docs/PROTOCOL.md`.
//!
//! - `docs/vectors/v3.json`: every structure (identities, handshake, keys, sealed frames of the connection
//!   and of request streams, one envelope of every type, an invite, a rotation) and the `accepted`
//!   behaviour cases;
//! - `docs/vectors/v3-negative.json`: the `negative` cases, each with the error it must produce.
//!
//! Everything is deterministic: fixed identity seeds, ephemeral secrets, nonces and clock; Ed25519 and
//! AES-GCM are deterministic too, so the bytes change only when the protocol does. To regenerate after an
//! intended change: `WOPR_WRITE_VECTORS=1 cargo test -p wopr-proto --test vectors`, then review the diff
//! of the JSON files and of `docs/PROTOCOL.md`. `WOPR_WRITE_FUZZ_SEEDS=1` also writes the vectors' inputs
//! into `fuzz/corpus/<target>/` (see `fuzz/README.md`).

mod cases;
mod check;
mod fixtures;
mod fuzz_seeds;
mod positive;
mod python;
mod sigs;
mod world;

use std::path::PathBuf;
use std::sync::OnceLock;

use serde_json::{Value, json};
use wopr_proto::codec::{Decode, Encode};
use wopr_proto::handshake::{HandshakeMessage, SUPPORTED_VERSIONS};
use wopr_proto::message::Envelope;

use fixtures::bytes;

const POSITIVE: &str = "v3.json";
const NEGATIVE: &str = "v3-negative.json";

pub fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/vectors")
}

/// Both files as the code generates them: (v3.json, v3-negative.json).
fn generate() -> (String, String) {
    let world = world::World::build();
    let identities = json!(positive::identities());
    let (accepted, negative) = cases::all(&world, &identities);
    let positive = positive::generate(&world, accepted);
    let negative = json!({
        "about": "WOPR protocol v3 negative test vectors; see docs/PROTOCOL.md section 13. Identities, keys and the clock are those of v3.json; all byte strings are lowercase hex.",
        "now_ms": fixtures::NOW,
        "negative": negative,
    });
    let text = |v: &Value| serde_json::to_string_pretty(v).expect("json") + "\n";
    (text(&positive), text(&negative))
}

/// The committed files' text; with `WOPR_WRITE_VECTORS` set, (re)written first, once per test process.
fn committed() -> &'static (String, String) {
    static TEXT: OnceLock<(String, String)> = OnceLock::new();
    TEXT.get_or_init(|| {
        let dir = vectors_dir();
        if std::env::var_os("WOPR_WRITE_VECTORS").is_some() {
            let (p, n) = generate();
            std::fs::write(dir.join(POSITIVE), p).expect("write vectors");
            std::fs::write(dir.join(NEGATIVE), n).expect("write vectors");
        }
        let read = |f: &str| {
            std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| {
                panic!("docs/vectors/{f}: {e}; run with WOPR_WRITE_VECTORS=1 to create it")
            })
        };
        (read(POSITIVE), read(NEGATIVE))
    })
}

fn committed_json() -> (Value, Value) {
    let (p, n) = committed();
    (serde_json::from_str(p).expect("v3.json"), serde_json::from_str(n).expect("v3-negative.json"))
}

#[test]
fn code_matches_the_committed_v3_vectors() {
    let (positive, negative) = generate();
    let (p, n) = committed();
    assert!(*p == positive, "code no longer matches docs/vectors/{POSITIVE}");
    assert!(*n == negative, "code no longer matches docs/vectors/{NEGATIVE}");
    if std::env::var_os("WOPR_WRITE_FUZZ_SEEDS").is_some() {
        fuzz_seeds::write(&committed_json().0, &committed_json().1);
    }
}

/// Runs every committed case through the code, from the JSON alone, and compares the outcome.
fn run_cases(cases: &Value, identities: &Value) -> usize {
    let cases = cases.as_array().expect("a list of cases");
    for case in cases {
        let name = &case["name"];
        let check = case["check"].as_str().expect("check");
        let outcome = check::run(check, &case["input"], identities);
        match (outcome, case.get("error")) {
            (Ok(result), None) => assert_eq!(result, case["result"], "{check} case {name}"),
            (Err(refusal), Some(error)) => {
                assert_eq!(refusal.error, *error, "{check} case {name}: the error");
                assert_eq!(json!(refusal.code), case["code"], "{check} case {name}: the code");
                assert_eq!(refusal.rust_error, case["rust_error"], "{check} case {name}: the exact error");
            }
            (Ok(result), Some(error)) => panic!("{check} case {name} must fail with {error}, got {result}"),
            (Err(refusal), None) => panic!("{check} case {name} must succeed, got {refusal:?}"),
        }
    }
    cases.len()
}

#[test]
fn every_negative_vector_fails_with_exactly_its_error() {
    let (positive, negative) = committed_json();
    let n = run_cases(&negative["negative"], &positive["identities"]);
    assert!(n >= 100, "only {n} negative cases");
}

#[test]
fn every_accepted_case_succeeds_with_its_result() {
    let (positive, _) = committed_json();
    let n = run_cases(&positive["accepted"], &positive["identities"]);
    assert!(n >= 40, "only {n} accepted cases");
}

#[test]
fn committed_structures_decode_with_the_public_api() {
    let (v, _) = committed_json();
    let hello = HandshakeMessage::from_bytes(&bytes(&v["handshake"]["hello"])).expect("hello");
    assert!(matches!(hello, HandshakeMessage::Hello(_)));
    let ack = HandshakeMessage::from_bytes(&bytes(&v["handshake"]["ack"])).expect("ack");
    assert!(matches!(ack, HandshakeMessage::HelloAck(_)));
    for reject in v["handshake"]["rejects"].as_array().expect("rejects") {
        let back = HandshakeMessage::from_bytes(&bytes(&reject["bytes"])).expect("reject");
        let HandshakeMessage::Reject(r) = back else { panic!("a Reject") };
        assert_eq!(
            (json!(r.code.as_u8()), json!(r.message)),
            (reject["code"].clone(), reject["message"].clone())
        );
    }
    // Every envelope decodes to the fields the file lists and encodes back to the same bytes.
    for e in v["envelopes"].as_array().expect("envelopes") {
        let raw = bytes(&e["envelope"]);
        let env = Envelope::from_bytes(&raw).expect("envelope");
        assert_eq!(env.to_bytes(), raw);
        assert_eq!(positive::message_fields(&env.message), e["message"], "envelope {}", e["name"]);
        assert_eq!(json!(env.message.type_byte()), e["type"]);
        assert_eq!(hex::encode(env.nonce), e["nonce"]);
        assert_eq!(json!(env.timestamp_ms), e["timestamp_ms"]);
    }
    // Every stream frame opens with its stream's documented key and AAD, in counter order.
    for s in v["streams"].as_array().expect("streams") {
        let open = |dir: &str| {
            wopr_proto::channel::OpeningKey::new(
                &fixtures::array(&s[format!("key_{dir}")]),
                &bytes(&s[format!("aad_{dir}")]),
            )
        };
        let (mut i2r, mut r2i) = (open("i2r"), open("r2i"));
        for f in s["frames"].as_array().expect("frames") {
            let key = if f["direction"] == "i2r" { &mut i2r } else { &mut r2i };
            assert_eq!(json!(key.counter() as u64), f["counter"]);
            let frame = bytes(&f["frame"]);
            let plain = key.open(wopr_proto::frame::decode_frame(&frame).expect("frame")).expect("opens");
            let named =
                v["envelopes"].as_array().expect("envelopes").iter().find(|e| e["name"] == f["envelope"]);
            assert_eq!(json!(hex::encode(plain)), named.expect("named envelope")["envelope"]);
        }
    }
}

#[test]
fn supported_versions_are_strictly_descending_so_the_first_common_one_is_the_highest() {
    assert!(SUPPORTED_VERSIONS.windows(2).all(|w| w[0] > w[1]), "{SUPPORTED_VERSIONS:?}");
}

#[test]
fn an_independent_verifier_written_from_the_spec_agrees_with_every_vector() {
    python::run_independent_verifier(&vectors_dir());
}
