//! Seeds for the fuzz corpus (`fuzz/corpus/<target>/`): every input of the vectors, given to the fuzz
//! target that decodes it. Written only with `WOPR_WRITE_FUZZ_SEEDS=1`; `fuzz/README.md` says how the
//! corpus is then minimized.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::fixtures::bytes;

/// Selector bytes of the `text` target (its first input byte picks the parser).
const TEXT_PUBLIC_ID: u8 = 0;
const TEXT_ROTATION_JSON: u8 = 1;

pub fn write(positive: &Value, negative: &Value) {
    let mut seeds: BTreeSet<(&'static str, Vec<u8>)> = BTreeSet::new();
    let text = |selector: u8, s: &str| [vec![selector], s.as_bytes().to_vec()].concat();
    let h = &positive["handshake"];
    for field in ["hello", "ack"] {
        seeds.insert(("handshake", bytes(&h[field])));
    }
    seeds.insert(("frame", bytes(&h["hello_frame"])));
    for r in h["rejects"].as_array().expect("rejects") {
        seeds.insert(("handshake", bytes(&r["bytes"])));
    }
    for e in positive["envelopes"].as_array().expect("envelopes") {
        seeds.insert(("envelope", bytes(&e["envelope"])));
    }
    for s in positive["streams"].as_array().expect("streams") {
        for f in s["frames"].as_array().expect("frames") {
            let frame = bytes(&f["frame"]);
            seeds.insert(("sealed", frame[4..].to_vec()));
            seeds.insert(("frame", frame));
        }
    }
    seeds.insert(("invite", bytes(&positive["invite"]["token"])));
    seeds.insert(("invite", positive["invite"]["uri"].as_str().expect("uri").as_bytes().to_vec()));
    for kind in ["request", "accept"] {
        let f = &positive["friend"][kind];
        seeds.insert(("friend", bytes(&f["bytes"])));
        seeds.insert(("friend", f["line"].as_str().expect("line").as_bytes().to_vec()));
    }
    let d = &positive["discovery"];
    seeds.insert(("topic", bytes(&d["profile"]["announce"])));
    seeds.insert(("topic", bytes(&d["withdraw"]["bytes"])));
    seeds.insert(("profile", bytes(&d["profile"]["bytes"])));
    let all = positive["accepted"].as_array().expect("accepted").iter();
    for case in all.chain(negative["negative"].as_array().expect("negative")) {
        let input = &case["input"];
        let str_of = |f: &str| input[f].as_str().expect("string").to_string();
        let found: Vec<(&'static str, Vec<u8>)> = match case["check"].as_str().expect("check") {
            "frame" => vec![("frame", bytes(&input["frame"]))],
            "sealed" => input["frames"]
                .as_array()
                .expect("frames")
                .iter()
                .map(|f| ("sealed", bytes(f).get(4..).unwrap_or_default().to_vec()))
                .collect(),
            "handshake_respond" => vec![("handshake", bytes(&input["hello"]))],
            "handshake_finish" => vec![("handshake", bytes(&input["reply"]))],
            "envelope_decode" | "envelope_verify" => vec![("envelope", bytes(&input["envelope"]))],
            // The over-long URI case is left out: the corpus stays small.
            "invite_parse" if str_of("uri").len() < 4096 => vec![("invite", str_of("uri").into_bytes())],
            "invite_claim" => vec![("invite", bytes(&input["token"]))],
            "public_id" => vec![("text", text(TEXT_PUBLIC_ID, &str_of("text")))],
            "friend_request_line" | "friend_accept_line" if str_of("line").len() < 4096 => {
                vec![("friend", str_of("line").into_bytes())]
            }
            "friend_request" => vec![("friend", bytes(&input["request"]))],
            "friend_accept" => vec![("friend", bytes(&input["accept"]))],
            "rotation_json" => vec![("text", text(TEXT_ROTATION_JSON, &str_of("json")))],
            "topic_message" => {
                let earlier = input["before"].as_array().expect("before").iter();
                let mut all: Vec<_> = earlier.map(|m| ("topic", bytes(&m["message"]))).collect();
                all.push(("topic", bytes(&input["message"])));
                all
            }
            "connect_request" => vec![("envelope", bytes(&input["envelope"]))],
            _ => vec![],
        };
        seeds.extend(found);
    }
    let corpus = crate::vectors_dir().join("../../fuzz/corpus");
    for (target, seed) in seeds {
        let name = hex::encode(Sha256::digest(&seed)).chars().take(16).collect::<String>();
        let dir = corpus.join(target);
        std::fs::create_dir_all(&dir).expect("corpus dir");
        write_seed(&dir.join(format!("vector-{name}")), &seed);
    }
}

fn write_seed(path: &Path, seed: &[u8]) {
    std::fs::write(path, seed).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}
