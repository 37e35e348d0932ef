//! The handshake checks of §4.4, on both sides, with the exact error and code of each refusal.

use serde_json::{Value, json};
use wopr_identity::{Identity, PublicId};
use wopr_proto::codec::Encode;
use wopr_proto::handshake::{HandshakeMessage, Hello, HelloAck, Reject};
use wopr_proto::{ErrorCode, MAX_SKEW_MS};

use super::{Accepted, Cases, Fails};
use crate::fixtures::{BOB_NEXT, INITIATOR_RANDOM, NOW, RESPONDER_RANDOM, name_of};
use crate::world::{World, alice_starts};

/// The X25519 u-coordinates that give an all-zero shared secret (RFC 7748 §6.1 "low order").
fn low_order(u: u8, top_bit: bool) -> [u8; 32] {
    let mut p = [0u8; 32];
    p[0] = u;
    if top_bit {
        p[31] = 0x80; // RFC 7748 ignores bit 255 of a u-coordinate
    }
    p
}

fn respond_input(hello: &[u8], remote: &PublicId, now_ms: u64) -> Value {
    json!({
        "responder": "bob",
        "remote": name_of(remote),
        "now_ms": now_ms,
        "hello": hex::encode(hello),
        "responder_ephemeral_secret": hex::encode(RESPONDER_RANDOM.0),
        "responder_nonce": hex::encode(RESPONDER_RANDOM.1),
    })
}

/// alice's Hello with `edit` applied, signed again by alice for `responder`.
fn hello_with(world: &World, responder: &PublicId, edit: impl FnOnce(&mut Hello)) -> Vec<u8> {
    let mut hello = world.hello.clone();
    edit(&mut hello);
    hello.sign(&world.alice, responder);
    hello.to_bytes()
}

pub fn respond<'a>(world: &World, identities: &'a Value) -> Cases<'a> {
    let mut c = Cases::new("handshake_respond", identities);
    let alice = world.alice.public_id();
    let bob = world.bob.public_id();
    let real = world.hello.to_bytes();
    let versions = |v: &[u16]| hello_with(world, &bob, |h| h.versions = v.to_vec());
    let ephemeral = |e: [u8; 32]| hello_with(world, &bob, |h| h.ephemeral = e);

    c.add("the_vectors_hello", respond_input(&real, &alice, NOW + 1), Accepted);
    c.add("five_minutes_old", respond_input(&real, &alice, NOW + MAX_SKEW_MS), Accepted);
    c.add("five_minutes_ahead", respond_input(&real, &alice, NOW - MAX_SKEW_MS), Accepted);
    c.add("offers_4_and_3", respond_input(&versions(&[4, 3]), &alice, NOW), Accepted);
    c.add("offers_2_and_3", respond_input(&versions(&[2, 3]), &alice, NOW), Accepted);

    let mut flipped = real.clone();
    let last = flipped.len() - 10;
    flipped[last] ^= 1;
    c.add("bad_signature", respond_input(&flipped, &alice, NOW), Fails("BadSignature", Some(3)));
    let for_other = hello_with(world, &BOB_NEXT.id(), |_| {});
    c.add(
        "signed_for_another_responder",
        respond_input(&for_other, &alice, NOW),
        Fails("BadSignature", Some(3)),
    );
    c.add(
        "signer_is_not_the_transport_key",
        respond_input(&real, &BOB_NEXT.id(), NOW),
        Fails("SignerMismatch", Some(7)),
    );
    c.add(
        "no_common_version",
        respond_input(&versions(&[1, 2]), &alice, NOW),
        Fails("NoCommonVersion", Some(5)),
    );
    c.add("no_versions", respond_input(&versions(&[]), &alice, NOW), Fails("NoCommonVersion", Some(5)));
    c.add("too_old", respond_input(&real, &alice, NOW + MAX_SKEW_MS + 1), Fails("ClockSkew", Some(3)));
    c.add(
        "from_the_future",
        respond_input(&real, &alice, NOW - MAX_SKEW_MS - 1),
        Fails("ClockSkew", Some(3)),
    );
    let weak = Fails("WeakEphemeral", Some(3));
    c.add("ephemeral_zero", respond_input(&ephemeral(low_order(0, false)), &alice, NOW), weak);
    c.add("ephemeral_one", respond_input(&ephemeral(low_order(1, false)), &alice, NOW), weak);
    c.add(
        "ephemeral_zero_with_bit_255_set",
        respond_input(&ephemeral(low_order(0, true)), &alice, NOW),
        weak,
    );
    c.add(
        "trailing_byte",
        respond_input(&[real.as_slice(), &[0]].concat(), &alice, NOW),
        Fails("Malformed.TrailingBytes", Some(3)),
    );
    c.add(
        "truncated",
        respond_input(&real[..real.len() - 1], &alice, NOW),
        Fails("Malformed.Truncated", Some(3)),
    );
    let seventeen: Vec<u16> = (0..17).map(|i| 3 + i).collect();
    c.add(
        "17_versions",
        respond_input(&versions(&seventeen), &alice, NOW),
        Fails("Malformed.TooLong", Some(3)),
    );
    let mut unknown = real.clone();
    unknown[0] = 4;
    c.add(
        "unknown_message_type",
        respond_input(&unknown, &alice, NOW),
        Fails("Malformed.UnknownTag", Some(3)),
    );
    c.add(
        "an_ack_instead_of_a_hello",
        respond_input(&world.ack.to_bytes(), &alice, NOW),
        Fails("Unexpected", Some(3)),
    );
    // The order of the checks: version, signer, clock, signature, ephemeral.
    c.add(
        "order_version_before_signer",
        respond_input(&versions(&[2]), &BOB_NEXT.id(), NOW),
        Fails("NoCommonVersion", Some(5)),
    );
    c.add(
        "order_signer_before_clock",
        respond_input(&real, &BOB_NEXT.id(), NOW + MAX_SKEW_MS + 1),
        Fails("SignerMismatch", Some(7)),
    );
    c.add(
        "order_clock_before_signature",
        respond_input(&flipped, &alice, NOW + MAX_SKEW_MS + 1),
        Fails("ClockSkew", Some(3)),
    );
    let mut weak_unsigned = world.hello.clone();
    weak_unsigned.ephemeral = low_order(0, false);
    c.add(
        "order_signature_before_ephemeral",
        respond_input(&weak_unsigned.to_bytes(), &alice, NOW),
        Fails("BadSignature", Some(3)),
    );
    c
}

fn finish_input(reply: &[u8], now_ms: u64) -> Value {
    json!({
        "initiator": "alice",
        "responder": "bob",
        "initiator_ephemeral_secret": hex::encode(INITIATOR_RANDOM.0),
        "initiator_nonce": hex::encode(INITIATOR_RANDOM.1),
        "start_ms": NOW,
        "hello": hex::encode(alice_starts().1.to_bytes()),
        "reply": hex::encode(reply),
        "now_ms": now_ms,
    })
}

/// bob's Ack with `edit` applied, signed by `signer` over alice's Hello.
fn ack_with(world: &World, signer: &Identity, edit: impl FnOnce(&mut HelloAck)) -> Vec<u8> {
    let mut ack = world.ack.clone();
    ack.static_key = signer.public_id();
    edit(&mut ack);
    ack.sign(signer, &world.hello);
    ack.to_bytes()
}

pub fn finish<'a>(world: &World, identities: &'a Value) -> Cases<'a> {
    let mut c = Cases::new("handshake_finish", identities);
    let bob = &world.bob;
    let real = world.ack.to_bytes();
    let now = NOW + 2;
    let choose = |version: u16, versions: &[u16]| {
        ack_with(world, bob, |a| {
            a.version = version;
            a.versions = versions.to_vec();
        })
    };
    let downgrade = Fails("Downgrade", Some(5));

    c.add("the_vectors_ack", finish_input(&real, now), Accepted);
    c.add("ack_lists_a_version_we_do_not_know", finish_input(&choose(3, &[4, 3]), now), Accepted);
    c.add("five_minutes_old", finish_input(&real, NOW + 1 + MAX_SKEW_MS), Accepted);

    c.add("downgrade_to_2", finish_input(&choose(2, &[3, 2]), now), downgrade);
    c.add("version_not_offered", finish_input(&choose(4, &[4, 3]), now), downgrade);
    c.add("chosen_version_not_in_its_own_list", finish_input(&choose(3, &[2]), now), downgrade);
    c.add("empty_version_list", finish_input(&choose(3, &[]), now), downgrade);
    c.add(
        "signed_by_another_key",
        finish_input(&ack_with(world, &world.bob_next, |_| {}), now),
        Fails("SignerMismatch", Some(7)),
    );
    let mut flipped = real.clone();
    let last = flipped.len() - 10;
    flipped[last] ^= 1;
    c.add("bad_signature", finish_input(&flipped, now), Fails("BadSignature", Some(3)));
    let mut other_hello = world.hello.clone();
    other_hello.nonce = [0x99; 32];
    let mut for_other = world.ack.clone();
    for_other.sign(bob, &other_hello);
    c.add(
        "signed_over_another_hello",
        finish_input(&for_other.to_bytes(), now),
        Fails("BadSignature", Some(3)),
    );
    c.add("too_old", finish_input(&real, NOW + 1 + MAX_SKEW_MS + 1), Fails("ClockSkew", Some(3)));
    c.add(
        "weak_ephemeral",
        finish_input(&ack_with(world, bob, |a| a.ephemeral = low_order(0, false)), now),
        Fails("WeakEphemeral", Some(3)),
    );
    let reject =
        |code, message: &str| HandshakeMessage::Reject(Reject { code, message: message.into() }).to_bytes();
    c.add(
        "rejected_for_version",
        finish_input(&reject(ErrorCode::VersionMismatch, "no common version"), now),
        Fails("Rejected", Some(5)),
    );
    c.add(
        "rejected_as_unauthorized",
        finish_input(&reject(ErrorCode::Unauthorized, "signer mismatch"), now),
        Fails("Rejected", Some(7)),
    );
    c.add(
        "rejected_for_the_request_budget",
        finish_input(&reject(ErrorCode::RateLimited, "retry in 12 s"), now),
        Fails("Rejected", Some(4)),
    );
    c.add(
        "a_hello_instead_of_an_ack",
        finish_input(&world.hello.to_bytes(), now),
        Fails("Unexpected", Some(3)),
    );
    // Reject: type 3, code 6 (not a code), empty message.
    c.add(
        "reject_with_an_unknown_code",
        finish_input(&[3, 6, 0, 0, 0, 0], now),
        Fails("Malformed.UnknownTag", Some(3)),
    );
    // Reject announcing a 1025-byte message: refused from its length alone.
    c.add(
        "reject_message_over_1024_bytes",
        finish_input(&[3, 3, 0, 0, 4, 1], now),
        Fails("Malformed.TooLong", Some(3)),
    );
    c.add(
        "trailing_byte",
        finish_input(&[real.as_slice(), &[0]].concat(), now),
        Fails("Malformed.TrailingBytes", Some(3)),
    );
    // The order of the checks: signer, downgrade, clock, signature, ephemeral.
    c.add(
        "order_signer_before_downgrade",
        finish_input(
            &ack_with(world, &world.bob_next, |a| {
                a.version = 2;
                a.versions = vec![3, 2];
            }),
            now,
        ),
        Fails("SignerMismatch", Some(7)),
    );
    c.add(
        "order_downgrade_before_clock",
        finish_input(&choose(2, &[3, 2]), NOW + 1 + MAX_SKEW_MS + 1),
        downgrade,
    );
    c.add(
        "order_clock_before_signature",
        finish_input(&flipped, NOW + 1 + MAX_SKEW_MS + 1),
        Fails("ClockSkew", Some(3)),
    );
    c
}
