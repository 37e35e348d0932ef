//! The fixed inputs every vector is made from, and small helpers shared by the generator and the checker.

use serde_json::Value;
use wopr_identity::{Identity, PublicId};

/// The clock of every vector, milliseconds since the Unix epoch.
pub const NOW: u64 = 1_700_000_000_000;

/// An identity of the vectors: a name, its Ed25519 seed and its X25519 secret (before clamping).
pub struct Fixture {
    pub name: &'static str,
    pub ed25519_seed: [u8; 32],
    pub x25519_secret: [u8; 32],
}

pub const ALICE: Fixture = Fixture { name: "alice", ed25519_seed: [0xa1; 32], x25519_secret: [0xa2; 32] };
pub const BOB: Fixture = Fixture { name: "bob", ed25519_seed: [0xb1; 32], x25519_secret: [0xb2; 32] };
pub const BOB_NEXT: Fixture =
    Fixture { name: "bob_next", ed25519_seed: [0xc1; 32], x25519_secret: [0xc2; 32] };
pub const FIXTURES: [&Fixture; 3] = [&ALICE, &BOB, &BOB_NEXT];

/// Handshake randomness: (ephemeral X25519 secret, 32-byte nonce).
pub const INITIATOR_RANDOM: ([u8; 32], [u8; 32]) = ([0xe1; 32], [0xe2; 32]);
pub const RESPONDER_RANDOM: ([u8; 32], [u8; 32]) = ([0xf1; 32], [0xf2; 32]);

impl Fixture {
    pub fn identity(&self) -> Identity {
        Identity::from_seeds(self.ed25519_seed, self.x25519_secret, NOW)
    }

    pub fn id(&self) -> PublicId {
        self.identity().public_id()
    }
}

/// The vectors' name of a key (`alice`, `bob`, `bob_next`), or its hex when it is none of them.
pub fn name_of(key: &PublicId) -> String {
    FIXTURES.iter().find(|f| f.id() == *key).map_or_else(|| key.to_hex(), |f| f.name.to_string())
}

/// The identity a vector names, rebuilt from the seeds listed in the committed file.
pub fn identity_named(identities: &Value, name: &str) -> Identity {
    let entry = identities
        .as_array()
        .and_then(|all| all.iter().find(|i| i["name"] == name))
        .unwrap_or_else(|| panic!("no identity {name:?} in the vectors"));
    Identity::from_seeds(array(&entry["ed25519_seed"]), array(&entry["x25519_secret"]), NOW)
}

/// A key given either as an identity's name or as 64 hex characters.
pub fn key(identities: &Value, v: &Value) -> PublicId {
    let s = v.as_str().unwrap_or_else(|| panic!("expected a key, found {v}"));
    if s.len() == 64 {
        return PublicId(array(v));
    }
    identity_named(identities, s).public_id()
}

pub fn bytes(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap_or_else(|| panic!("expected hex, found {v}"))).expect("hex")
}

pub fn array<const N: usize>(v: &Value) -> [u8; N] {
    bytes(v).try_into().unwrap_or_else(|_| panic!("expected {N} bytes, found {v}"))
}

pub fn u64_of(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("expected an integer, found {v}"))
}
