//! Frames (§3), sealed frames (§6), envelopes (§7) and the replay window (§11).

use serde_json::{Value, json};
use wopr_identity::PublicId;
use wopr_proto::MAX_SKEW_MS;
use wopr_proto::channel::{Direction, SealingKey};
use wopr_proto::codec::{Encode, Writer};
use wopr_proto::frame::{MAX_FRAME, MAX_PAYLOAD};
use wopr_proto::message::{Envelope, Message};

use super::{Accepted, Cases, Fails};
use crate::fixtures::{BOB_NEXT, NOW, name_of};
use crate::sigs;
use crate::world::World;

pub fn frames(identities: &Value) -> Cases<'_> {
    let mut c = Cases::new("frame", identities);
    let frame = |b: Vec<u8>| json!({ "frame": hex::encode(b) });
    let header = |len: u32| len.to_be_bytes().to_vec();
    let max = u32::try_from(MAX_FRAME).expect("fits");
    c.add("empty_body", frame(header(0)), Accepted);
    c.add("five_bytes", frame([header(5), b"hello".to_vec()].concat()), Accepted);
    c.add("empty_input", frame(vec![]), Fails("Truncated", Some(3)));
    c.add("three_header_bytes", frame(vec![0, 0, 0]), Fails("Truncated", Some(3)));
    c.add("body_cut_short", frame([header(5), b"hel".to_vec()].concat()), Fails("Truncated", Some(3)));
    c.add("max_frame_announced_body_missing", frame(header(max)), Fails("Truncated", Some(3)));
    c.add("trailing_byte", frame([header(1), b"ab".to_vec()].concat()), Fails("TrailingBytes", Some(3)));
    // The length is checked before anything else: no body needs to be present.
    c.add("one_byte_over_max_frame", frame(header(max + 1)), Fails("TooLarge", Some(3)));
    c.add("u32_max", frame(header(u32::MAX)), Fails("TooLarge", Some(3)));
    c
}

/// The frames of stream 4, sealed by hand with the documented keys: (i2r frames, r2i frames).
fn stream_4(world: &World) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let (i2r, r2i) = (Direction::InitiatorToResponder, Direction::ResponderToInitiator);
    let seal = |direction: Direction, names: &[&str]| {
        let mut key = SealingKey::new(&world.keys.stream_key(direction, 4), &direction.stream_label(4));
        names.iter().map(|n| key.seal_frame(&world.envelope(n).to_bytes()).expect("seal")).collect()
    };
    (seal(i2r, &["inject"]), seal(r2i, &["inject_delta", "inject_delta_2", "inject_done_completed"]))
}

pub fn sealed<'a>(world: &World, identities: &'a Value) -> Cases<'a> {
    let mut c = Cases::new("sealed", identities);
    let (i2r, r2i) = (Direction::InitiatorToResponder, Direction::ResponderToInitiator);
    let (a, b) = stream_4(world);
    let input = |direction: Direction, stream: Option<u64>, frames: &[&Vec<u8>]| {
        let (key, aad) = match stream {
            Some(s) => (world.keys.stream_key(direction, s), direction.stream_label(s)),
            None => (world.keys.connection_key(direction), direction.label().to_vec()),
        };
        json!({
            "key": hex::encode(*key),
            "aad": hex::encode(aad),
            "frames": frames.iter().map(hex::encode).collect::<Vec<_>>(),
        })
    };
    let failed = Fails("OpenFailed", Some(3));
    c.add("in_order", input(r2i, Some(4), &[&b[0], &b[1], &b[2]]), Accepted);
    c.add("request", input(i2r, Some(4), &[&a[0]]), Accepted);
    c.add("replayed", input(r2i, Some(4), &[&b[0], &b[0]]), failed);
    c.add("reordered", input(r2i, Some(4), &[&b[1]]), failed);
    c.add("one_dropped", input(r2i, Some(4), &[&b[0], &b[2]]), failed);
    c.add("reflected_to_its_sender", input(r2i, Some(4), &[&a[0]]), failed);
    c.add("from_another_stream", input(i2r, Some(8), &[&a[0]]), failed);
    c.add("stream_frame_under_the_connection_keys", input(i2r, None, &[&a[0]]), failed);
    let mut wrong_aad = input(i2r, Some(4), &[&a[0]]);
    wrong_aad["aad"] = json!(hex::encode(i2r.label()));
    c.add("right_key_aad_without_the_stream_id", wrong_aad, failed);
    let flip = |frame: &Vec<u8>, at: usize| {
        let mut f = frame.clone();
        f[at] ^= 1;
        f
    };
    let tampered = flip(&a[0], 10);
    c.add("ciphertext_changed", input(i2r, Some(4), &[&tampered]), failed);
    c.add("tag_changed", input(i2r, Some(4), &[&flip(&a[0], a[0].len() - 1)]), failed);
    let short = [15u32.to_be_bytes().to_vec(), vec![0; 15]].concat();
    c.add("shorter_than_a_tag", input(i2r, Some(4), &[&short]), failed);
    c.add(
        "the_genuine_frame_after_a_failure",
        input(i2r, Some(4), &[&tampered, &a[0]]),
        Fails("Failed", Some(3)),
    );
    let cut = a[0][..a[0].len() - 1].to_vec();
    c.add("truncated", input(i2r, Some(4), &[&cut]), Fails("Truncated", Some(3)));
    c
}

/// An envelope header (nonce, timestamp, type) followed by `body`.
fn raw(kind: u8, body: impl FnOnce(&mut Writer)) -> Vec<u8> {
    let mut w = Writer::new();
    w.raw(&[0x50; 16]).u64(NOW).u8(kind);
    body(&mut w);
    w.into_bytes()
}

pub fn envelope_decoding<'a>(world: &World, identities: &'a Value) -> Cases<'a> {
    let mut c = Cases::new("envelope_decode", identities);
    let env = |b: Vec<u8>| json!({ "envelope": hex::encode(b) });
    let bytes_of = |name: &str| world.envelope(name).to_bytes();
    let key = [0x77; 32];
    let sig = [0u8; 64];
    for e in &world.envelopes {
        c.add(e.name, env(e.envelope.to_bytes()), Accepted);
    }
    // Decoding leaves names, hop counts and empty grants to the receiver's later checks.
    c.add(
        "inject_with_an_empty_session_name_decodes",
        env(raw(1, |w| {
            w.raw(&key).str("").str("x").u8(0).raw(&sig);
        })),
        Accepted,
    );
    c.add(
        "inject_with_hop_count_255_decodes",
        env(raw(1, |w| {
            w.raw(&key).str("s").str("x").u8(255).raw(&sig);
        })),
        Accepted,
    );
    c.add(
        "claim_accepted_with_nothing_decodes",
        env(raw(7, |w| {
            w.u16(0).u8(0);
        })),
        Accepted,
    );
    let done = bytes_of("inject_done_completed");
    c.add("trailing_byte", env([done.as_slice(), &[0]].concat()), Fails("TrailingBytes", Some(3)));
    let inject = bytes_of("inject");
    c.add("truncated", env(inject[..inject.len() - 1].to_vec()), Fails("Truncated", Some(3)));
    c.add("truncated_header", env(inject[..20].to_vec()), Fails("Truncated", Some(3)));
    let unknown = Fails("UnknownTag", Some(3));
    c.add("type_0", env(raw(0, |_| {})), unknown);
    c.add("type_14", env(raw(14, |_| {})), unknown);
    c.add(
        "inject_done_status_4",
        env(raw(4, |w| {
            w.u8(4);
        })),
        unknown,
    );
    c.add(
        "error_code_6",
        env(raw(9, |w| {
            w.u8(6).str("x").u8(0);
        })),
        unknown,
    );
    c.add(
        "error_code_0",
        env(raw(9, |w| {
            w.u8(0).str("x").u8(0);
        })),
        unknown,
    );
    c.add(
        "error_option_flag_2",
        env(raw(9, |w| {
            w.u8(4).str("x").u8(2);
        })),
        unknown,
    );
    c.add(
        "claim_accepted_capability_bit_2",
        env(raw(7, |w| {
            w.u16(0).u8(4);
        })),
        unknown,
    );
    c.add("rotation_reason_0", env(rotation_with_reason(world, 0)), unknown);
    c.add("rotation_reason_4", env(rotation_with_reason(world, 4)), unknown);
    c.add(
        "text_not_utf8",
        env(raw(3, |w| {
            w.bytes(&[0x66, 0xff]);
        })),
        Fails("InvalidUtf8", Some(3)),
    );
    let too_long = Fails("TooLong", Some(3));
    // Over-long fields are refused from their length prefix, before their bytes are needed.
    c.add(
        "session_name_of_256_bytes",
        env(raw(1, |w| {
            w.raw(&key).u32(256);
        })),
        too_long,
    );
    let over = u32::try_from(MAX_PAYLOAD + 1).expect("fits");
    c.add(
        "text_over_max_payload",
        env(raw(3, |w| {
            w.u32(over);
        })),
        too_long,
    );
    c.add(
        "tool_name_of_256_bytes",
        env(raw(5, |w| {
            w.u32(256);
        })),
        too_long,
    );
    c.add(
        "error_message_of_4097_bytes",
        env(raw(9, |w| {
            w.u8(3).u32(4097);
        })),
        too_long,
    );
    c.add(
        "claim_accepted_33_sessions",
        env(raw(7, |w| {
            w.u16(33);
        })),
        too_long,
    );
    c.add(
        "list_count_larger_than_the_input",
        env(raw(7, |w| {
            w.u16(5).u8(0).u8(0);
        })),
        Fails("Truncated", Some(3)),
    );
    c.add(
        "claim_token_with_a_trailing_byte",
        env(raw(6, |w| {
            let token = [world.claim_token.to_bytes(), vec![0]].concat();
            w.raw(&key).bytes(&token).raw(&sig);
        })),
        Fails("TrailingBytes", Some(3)),
    );
    c
}

fn rotation_with_reason(world: &World, reason: u8) -> Vec<u8> {
    let mut b = world.envelope("rotation").to_bytes();
    // nonce 16 + timestamp 8 + type 1 + three keys 96 + timestamp 8: the reason byte.
    b[16 + 8 + 1 + 96 + 8] = reason;
    b
}

pub fn envelope_verification<'a>(world: &World, identities: &'a Value) -> Cases<'a> {
    let mut c = Cases::new("envelope_verify", identities);
    let alice = world.alice.public_id();
    let bob = world.bob.public_id();
    let input = |env: &Envelope, recipient: &PublicId, remote: &PublicId| {
        json!({
            "envelope": hex::encode(env.to_bytes()),
            "recipient": name_of(recipient),
            "remote": name_of(remote),
        })
    };
    let inject = world.envelope("inject");
    let rotation = world.envelope("rotation");
    for name in ["inject", "log", "claim", "inject_refused"] {
        c.add(name, input(world.envelope(name), &bob, &alice), Accepted);
    }
    c.add("rotation_from_the_old_key", input(rotation, &alice, &bob), Accepted);
    c.add("rotation_from_the_new_key", input(rotation, &alice, &BOB_NEXT.id()), Accepted);
    c.add("rotation_from_any_key", input(rotation, &alice, &alice), Accepted);
    c.add(
        "unsigned_error_from_any_key",
        input(world.envelope("error_unauthorized"), &alice, &BOB_NEXT.id()),
        Accepted,
    );

    let bad = Fails("BadSignature", Some(3));
    let edit = |env: &Envelope, f: &dyn Fn(&mut Envelope)| {
        let mut e = env.clone();
        f(&mut e);
        e
    };
    let text_changed = edit(inject, &|e| {
        if let Message::Inject(m) = &mut e.message {
            m.text = "hellO".into();
        }
    });
    c.add("text_changed", input(&text_changed, &bob, &alice), bad);
    c.add("timestamp_changed", input(&edit(inject, &|e| e.timestamp_ms += 1), &bob, &alice), bad);
    c.add("nonce_changed", input(&edit(inject, &|e| e.nonce[0] ^= 1), &bob, &alice), bad);
    c.add(
        "hop_count_changed",
        input(
            &edit(inject, &|e| {
                if let Message::Inject(m) = &mut e.message {
                    m.hop_count = 1;
                }
            }),
            &bob,
            &alice,
        ),
        bad,
    );
    c.add("signed_for_another_recipient", input(inject, &BOB_NEXT.id(), &alice), bad);
    c.add(
        "author_is_not_the_connection",
        input(inject, &bob, &BOB_NEXT.id()),
        Fails("AuthorMismatch", Some(7)),
    );
    c.add("order_signature_before_author", input(&text_changed, &bob, &BOB_NEXT.id()), bad);
    let signature_of_inject = match &inject.message {
        Message::Inject(m) => m.signature,
        _ => unreachable!("inject"),
    };
    let log_with_inject_signature = edit(world.envelope("log"), &|e| {
        if let Message::Log(m) = &mut e.message {
            m.signature = signature_of_inject;
        }
    });
    c.add("signature_of_another_message", input(&log_with_inject_signature, &bob, &alice), bad);
    let claim_changed = edit(world.envelope("claim"), &|e| e.timestamp_ms += 1);
    c.add("claim_timestamp_changed", input(&claim_changed, &bob, &alice), bad);
    // Ed25519 edge cases (§1): each of these is accepted by some Ed25519 verifier, and refused here.
    let s_plus_l = sigs::non_canonical_s(inject);
    c.add("signature_s_not_reduced", input(&s_plus_l, &bob, &alice), bad);
    let (small_a, small_a_key) = sigs::small_order_author(inject, &bob);
    c.add("small_order_author_key", input(&small_a, &bob, &small_a_key), bad);
    let (small_r, mixed_key) = sigs::small_order_r(inject, &bob);
    c.add("small_order_r", input(&small_r, &bob, &mixed_key), bad);
    let torsion = sigs::mixed_order_r(inject, &world.alice, &bob);
    c.add("r_with_a_torsion_component", input(&torsion, &bob, &alice), bad);

    let rotation_edit = |f: &dyn Fn(&mut wopr_identity::RotationRecord)| {
        edit(rotation, &|e| {
            if let Message::Rotation(r) = &mut e.message {
                f(r);
            }
        })
    };
    c.add("rotation_new_sig_changed", input(&rotation_edit(&|r| r.new_sig[10] ^= 1), &alice, &bob), bad);
    c.add(
        "rotation_signatures_swapped",
        input(&rotation_edit(&|r| std::mem::swap(&mut r.old_sig, &mut r.new_sig)), &alice, &bob),
        bad,
    );
    c.add(
        "rotation_reason_changed",
        input(&rotation_edit(&|r| r.reason = wopr_identity::RotationReason::Compromise), &alice, &bob),
        bad,
    );
    c.add("rotation_to_another_key", input(&rotation_edit(&|r| r.new_key = alice), &alice, &bob), bad);
    c
}

pub fn replay(identities: &Value) -> Cases<'_> {
    let mut c = Cases::new("replay", identities);
    let msg = |n: u8, timestamp_ms: u64, now_ms: u64| json!({ "nonce": hex::encode([n; 16]), "timestamp_ms": timestamp_ms, "now_ms": now_ms });
    let input = |before: Vec<Value>, last: Value| {
        let mut v = last;
        v["window_ms"] = json!(MAX_SKEW_MS);
        v["capacity"] = json!(2);
        v["accepted_before"] = Value::Array(before);
        v
    };
    let w = MAX_SKEW_MS;
    c.add("fresh", input(vec![], msg(1, NOW, NOW)), Accepted);
    c.add("five_minutes_old", input(vec![], msg(1, NOW - w, NOW)), Accepted);
    c.add("five_minutes_ahead", input(vec![], msg(1, NOW + w, NOW)), Accepted);
    c.add("another_nonce", input(vec![msg(1, NOW, NOW)], msg(2, NOW, NOW + 1)), Accepted);
    c.add(
        "a_nonce_again_once_its_first_use_expired",
        input(vec![msg(1, NOW, NOW)], msg(1, NOW + w + 1, NOW + w + 1)),
        Accepted,
    );
    c.add(
        "full_until_the_oldest_expires",
        input(vec![msg(1, NOW, NOW), msg(2, NOW, NOW)], msg(3, NOW + w + 1, NOW + w + 1)),
        Accepted,
    );
    c.add("replayed", input(vec![msg(1, NOW, NOW)], msg(1, NOW, NOW + 1000)), Fails("Replayed", Some(3)));
    c.add("too_old", input(vec![], msg(1, NOW - w - 1, NOW)), Fails("Stale", Some(3)));
    c.add("from_the_future", input(vec![], msg(1, NOW + w + 1, NOW)), Fails("Stale", Some(3)));
    c.add(
        "replayed_after_the_window_is_stale",
        input(vec![msg(1, NOW, NOW)], msg(1, NOW, NOW + w + 1)),
        Fails("Stale", Some(3)),
    );
    c.add(
        "full",
        input(vec![msg(1, NOW, NOW), msg(2, NOW, NOW)], msg(3, NOW, NOW + 1)),
        Fails("Full", Some(4)),
    );
    c
}
