//! The behaviour cases: inputs written here by hand, each with the outcome the protocol requires.
//!
//! An accepted case must succeed; a negative case must fail with the error named here (and the code
//! named here). The generator runs each case through the code ([`crate::check::run`]) and stops if the
//! outcome differs from what is written here, so a committed case is both a requirement and a fact.

mod discovery;
mod friend;
mod handshake;
mod identity;
mod invite;
mod wire;

use serde_json::{Value, json};

use crate::check;
use crate::world::World;

/// What a case must produce.
#[derive(Clone, Copy)]
pub enum Expect {
    Ok,
    /// The error's stable name and the code the refusal carries (`None`: a local error, never sent).
    Err(&'static str, Option<u8>),
}

pub use Expect::{Err as Fails, Ok as Accepted};

/// The cases of one check, collected in order.
pub struct Cases<'a> {
    check: &'static str,
    identities: &'a Value,
    pub accepted: Vec<Value>,
    pub negative: Vec<Value>,
}

impl<'a> Cases<'a> {
    fn new(check: &'static str, identities: &'a Value) -> Self {
        Cases { check, identities, accepted: Vec::new(), negative: Vec::new() }
    }

    /// Adds a case after checking that the code does what `expect` says.
    fn add(&mut self, name: &str, input: Value, expect: Expect) {
        let outcome = check::run(self.check, &input, self.identities);
        let mut case = json!({ "name": name, "check": self.check, "input": input });
        match (expect, outcome) {
            (Expect::Ok, Ok(result)) => {
                case["result"] = result;
                self.accepted.push(case);
            }
            (Expect::Err(error, code), Err(refusal)) => {
                assert_eq!((refusal.error.as_str(), refusal.code), (error, code), "case {name}: {refusal:?}");
                case["error"] = json!(error);
                case["code"] = json!(code);
                case["rust_error"] = json!(refusal.rust_error);
                self.negative.push(case);
            }
            (Expect::Ok, Err(refusal)) => panic!("case {name} must be accepted, but: {refusal:?}"),
            (Expect::Err(error, _), Ok(result)) => {
                panic!("case {name} must fail with {error}, but: {result}")
            }
        }
    }
}

/// Every case: (accepted, negative).
pub fn all(world: &World, identities: &Value) -> (Vec<Value>, Vec<Value>) {
    let groups = [
        identity::public_ids(identities),
        wire::frames(identities),
        wire::sealed(world, identities),
        handshake::respond(world, identities),
        handshake::finish(world, identities),
        wire::envelope_decoding(world, identities),
        wire::envelope_verification(world, identities),
        wire::replay(identities),
        invite::parse(world, identities),
        invite::claim(world, identities),
        identity::rotation_json(world, identities),
        friend::request_line(world, identities),
        friend::request_bytes(world, identities),
        friend::accept_bytes(world, identities),
        friend::accept_line(world, identities),
        discovery::topic_messages(world, identities),
        discovery::connect_requests(world, identities),
        discovery::envelope_decoding(world, identities),
        discovery::envelope_verification(world, identities),
    ];
    let mut accepted = Vec::new();
    let mut negative = Vec::new();
    for g in groups {
        accepted.extend(g.accepted);
        negative.extend(g.negative);
    }
    (accepted, negative)
}
