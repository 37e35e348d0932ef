//! `wopr id`: creation, permissions, refusal to overwrite, JSON shape, rotation.

mod common;

use common::{TestHome, mode, stderr, stdout};
use sha2::{Digest, Sha256};

#[test]
fn id_init_creates_private_files_and_refuses_to_overwrite() {
    let h = TestHome::new();
    h.wopr().args(["id", "init"]).assert().success();
    assert_eq!(mode(&h.file("identity.json")), 0o600);
    assert_eq!(mode(&h.path()), 0o700);
    let before = std::fs::read(h.file("identity.json")).unwrap();

    let out = h.wopr().args(["id", "init"]).output().unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    assert_eq!(std::fs::read(h.file("identity.json")).unwrap(), before, "identity was changed");

    h.wopr().args(["id", "init", "--force"]).assert().success();
    assert_ne!(std::fs::read(h.file("identity.json")).unwrap(), before);
}

#[test]
fn id_json_short_id_is_sha256_of_public_key() {
    let h = TestHome::new();
    h.wopr().args(["id", "init"]).assert().success();
    let out = h.wopr().args(["id", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let pk = hex::decode(v["publicKey"].as_str().unwrap()).unwrap();
    assert_eq!(pk.len(), 32);
    assert_eq!(v["shortId"].as_str().unwrap(), &hex::encode(Sha256::digest(&pk))[..8]);
    assert_eq!(hex::decode(v["encryptPub"].as_str().unwrap()).unwrap().len(), 32);

    let text = stdout(&h.wopr().arg("id").output().unwrap());
    assert!(text.contains(&format!("WOPR ID: {}", v["shortId"].as_str().unwrap())), "{text}");
    assert!(text.contains(&format!("Full: wopr://{}", v["publicKey"].as_str().unwrap())), "{text}");
}

#[test]
fn secret_keys_never_appear_in_output() {
    let h = TestHome::new();
    let init = h.wopr().args(["id", "init"]).output().unwrap();
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(h.file("identity.json")).unwrap()).unwrap();
    let secrets = [file["privateKey"].as_str().unwrap(), file["encryptPriv"].as_str().unwrap()];
    let show = h.wopr().arg("id").output().unwrap();
    let json = h.wopr().args(["id", "--json"]).output().unwrap();
    let rotate = h.wopr().args(["id", "rotate", "--json"]).output().unwrap();
    for out in [init, show, json, rotate] {
        for s in secrets {
            assert!(!stdout(&out).contains(s) && !stderr(&out).contains(s));
        }
    }
}

#[test]
fn rotate_keeps_a_record_signed_by_both_keys() {
    let h = TestHome::new();
    h.wopr().args(["id", "init"]).assert().success();
    let old: serde_json::Value =
        serde_json::from_slice(&h.wopr().args(["id", "--json"]).output().unwrap().stdout).unwrap();
    let out = h.wopr().args(["id", "rotate", "--reason", "compromise", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let record: wopr_identity::RotationRecord = serde_json::from_slice(&out.stdout).unwrap();
    record.verify().expect("record verifies");
    assert_eq!(record.old_key.to_hex(), old["publicKey"].as_str().unwrap());
    let new: serde_json::Value =
        serde_json::from_slice(&h.wopr().args(["id", "--json"]).output().unwrap().stdout).unwrap();
    assert_eq!(record.new_key.to_hex(), new["publicKey"].as_str().unwrap());
    assert_eq!(mode(&h.file("identity.json")), 0o600);
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(h.file("identity.json")).unwrap()).unwrap();
    assert_eq!(file["rotations"].as_array().unwrap().len(), 1);

    let bad = h.wopr().args(["id", "rotate", "--reason", "whim"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(3));
}

#[test]
fn id_without_init_says_what_to_do() {
    let h = TestHome::new();
    let out = h.wopr().arg("id").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("wopr id init"), "{}", stderr(&out));
}

#[test]
fn a_corrupt_identity_file_is_reported_not_replaced() {
    let h = TestHome::new();
    h.wopr().args(["id", "init"]).assert().success();
    std::fs::write(h.file("identity.json"), b"{\"version\": 3, \"publicKey\": ").unwrap();
    let out = h.wopr().arg("id").output().unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("identity.json"), "{}", stderr(&out));
    assert_eq!(std::fs::read(h.file("identity.json")).unwrap(), b"{\"version\": 3, \"publicKey\": ");
}
