//! Profile verification throughput on one core: `Profile::parse` then `Profile::verify_for`, exactly
//! what a node runs on every announce that arrives in a topic, against a bare Ed25519 strict
//! verification (`ed25519_dalek::VerifyingKey::verify_strict`, key decoded each time as a node must) of
//! a message of the same length, measured in the same run. Two profiles: a typical one (a short JSON
//! self-description, one topic, two address hints) and the largest a node accepts (`MAX_CONTENT` of
//! content, `MAX_TOPICS` topics of `MAX_TOPIC_NAME` bytes and two hints, near `MAX_PROFILE_BYTES`: the
//! worst case an attacker can send).
//!
//! Target (issue 9): at least 20,000 verifications per second per core. "Per core" is counted in this
//! thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), with WOPR and the reference alternating in short
//! rounds, because on a shared machine wall time also counts other processes' slices; criterion's
//! wall-clock means are printed too. The ratio to the reference is the figure that travels between
//! machines: the Ed25519 verification itself is nearly all of the cost.
//! `cargo bench -p wopr-proto --bench profile`.

use std::cell::RefCell;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use ed25519_dalek::{Signature, VerifyingKey};
use nix::time::{ClockId, clock_gettime};
use wopr_identity::{Identity, domain_bytes};
use wopr_proto::Encode;
use wopr_proto::discovery::{MAX_CONTENT, MAX_TOPIC_NAME, MAX_TOPICS, PROFILE_DOMAIN, Profile};

const NOW: u64 = 1_800_000_000_000;
const TARGET_PER_SEC: f64 = 20_000.0;

/// A signed profile and what a bare verification of the same size needs.
struct Case {
    name: &'static str,
    topic: String,
    wire: Vec<u8>,
    key: [u8; 32],
    signed: Vec<u8>,
    signature: Signature,
}

impl Case {
    fn new(name: &'static str, content: String, topics: Vec<String>) -> Case {
        let alice = Identity::from_seeds([7; 32], [9; 32], 0);
        // The address hints a node puts in its announces: one IPv4 and one IPv6 socket address.
        let hints = vec!["203.0.113.7:40123".to_string(), "[2001:db8::7]:40123".to_string()];
        let profile = Profile::with_hints(&alice, content, topics, hints, NOW).expect("a valid profile");
        let signed = domain_bytes(PROFILE_DOMAIN, &profile.signed_bytes());
        Case {
            name,
            topic: profile.topics[0].clone(),
            wire: profile.to_bytes(),
            key: *alice.public_id().as_bytes(),
            signature: Signature::from_bytes(&profile.signature),
            signed,
        }
    }

    fn wopr(&self) {
        let profile = Profile::parse(black_box(&self.wire)).expect("parses");
        profile.verify_for(&self.topic, NOW).expect("verifies");
        black_box(profile);
    }

    fn reference(&self) {
        let key = VerifyingKey::from_bytes(black_box(&self.key)).expect("a valid key");
        key.verify_strict(black_box(&self.signed), &self.signature).expect("verifies");
    }
}

fn typical() -> Case {
    let content = r#"{"name":"Alice's research agent","description":"Reads papers on distributed systems and gossip protocols, summarises them, and answers questions about HyParView, Plumtree and Kademlia. Happy to review Rust code for protocol implementations.","skills":["summarise","review","rust","distributed-systems"],"languages":["en","fr"],"model":"local","availability":"weekdays 9-18 CET","contact":"ask for a session named research"}"#;
    Case::new("typical", content.to_string(), vec!["distributed-systems".into()])
}

fn largest() -> Case {
    let topics = (0..MAX_TOPICS).map(|i| format!("{i}").repeat(MAX_TOPIC_NAME)).collect();
    Case::new("largest", "x".repeat(MAX_CONTENT), topics)
}

/// Mean wall time per call, from criterion's own iterations.
fn measure(c: &mut Criterion, id: &str, mut f: impl FnMut()) -> Duration {
    let spent = RefCell::new((Duration::ZERO, 0u64));
    c.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                f();
            }
            let took = start.elapsed();
            let mut s = spent.borrow_mut();
            s.0 += took;
            s.1 += iters;
            took
        })
    });
    let (total, iters) = spent.into_inner();
    total / u32::try_from(iters.max(1)).unwrap_or(u32::MAX)
}

/// This thread's CPU time: what "per core" means on a machine shared with other work, where wall time
/// also counts the slices other processes took.
fn thread_cpu() -> Duration {
    let t = clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).expect("thread CPU clock");
    Duration::new(u64::try_from(t.tv_sec()).unwrap_or(0), u32::try_from(t.tv_nsec()).unwrap_or(0))
}

/// Median CPU time per call of each of `fs`, over rounds that alternate between them (so load from
/// other work, cache and frequency changes hit every function alike).
fn cpu_per_call<const N: usize>(fs: [&dyn Fn(); N]) -> [Duration; N] {
    const ROUNDS: usize = 51;
    const CALLS: u32 = 200;
    let mut samples = [[Duration::ZERO; ROUNDS]; N];
    for round in 0..ROUNDS {
        for (f, s) in fs.iter().zip(samples.iter_mut()) {
            let start = thread_cpu();
            for _ in 0..CALLS {
                f();
            }
            s[round] = (thread_cpu() - start) / CALLS;
        }
    }
    samples.map(|mut s| {
        s.sort();
        s[ROUNDS / 2]
    })
}

fn main() {
    let mut c = Criterion::default().configure_from_args().sample_size(30);
    let cases = [typical(), largest()];
    let mut wall = Vec::new();
    for case in &cases {
        let wopr = measure(&mut c, &format!("profile parse + verify_for, {}", case.name), || case.wopr());
        let reference =
            measure(&mut c, &format!("bare ed25519 verify_strict, {}", case.name), || case.reference());
        wall.push((wopr, reference));
    }
    c.final_summary();

    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let per_sec = |d: Duration| 1.0 / d.as_secs_f64();
    println!();
    println!(
        "profile verification on one core: Profile::parse + verify_for against a bare ed25519 verify_strict"
    );
    println!(
        "(key decoded + strict verify) of the same signed bytes; target >= {TARGET_PER_SEC:.0}/s per core."
    );
    for (case, (wall_wopr, wall_ref)) in cases.iter().zip(wall) {
        let parsed = Profile::parse(&case.wire).expect("parses");
        let decoded = VerifyingKey::from_bytes(&case.key).expect("a valid key");
        let [wopr, reference, parse, decode_key, predecoded] = cpu_per_call([
            &|| case.wopr(),
            &|| case.reference(),
            &|| {
                black_box(Profile::parse(black_box(&case.wire)).expect("parses"));
            },
            &|| {
                black_box(VerifyingKey::from_bytes(black_box(&case.key)).expect("a valid key"));
            },
            &|| {
                black_box(&decoded)
                    .verify_strict(black_box(&case.signed), &case.signature)
                    .expect("verifies");
            },
        ]);
        black_box(parsed);
        let rate = per_sec(wopr);
        println!(
            "  {} profile ({} B on the wire, {} B signed with the domain prefix):",
            case.name,
            case.wire.len(),
            case.signed.len()
        );
        println!(
            "    per CPU-second: {:>7.0}/s ({:.1} us each); bare verify_strict {:>7.0}/s ({:.1} us): \
             ratio {:.3}x the reference's time; target {}",
            rate,
            us(wopr),
            per_sec(reference),
            us(reference),
            wopr.as_secs_f64() / reference.as_secs_f64(),
            if rate >= TARGET_PER_SEC { "met" } else { "MISSED" }
        );
        println!(
            "    of which parse {:.2} us ({:.1}%), key decode {:.1} us ({:.0}%, also in the reference)",
            us(parse),
            100.0 * parse.as_secs_f64() / wopr.as_secs_f64(),
            us(decode_key),
            100.0 * decode_key.as_secs_f64() / wopr.as_secs_f64()
        );
        println!(
            "    strict verify with the key already decoded (a cache of known authors' decoded keys): {:>7.0}/s",
            per_sec(predecoded)
        );
        println!(
            "    wall clock (criterion means, machine load included): {:>7.0}/s, reference {:>7.0}/s, ratio {:.3}x",
            per_sec(wall_wopr),
            per_sec(wall_ref),
            wall_wopr.as_secs_f64() / wall_ref.as_secs_f64()
        );
    }
}
