//! Handshake message decoding, then both sides' checks on whatever decoded: anything that decodes must
//! re-encode to the same bytes, and a hostile Hello or reply must be refused cleanly, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wopr_identity::Identity;
use wopr_proto::handshake::{HandshakeMessage, HandshakeRandom, Initiator, respond};
use wopr_proto::{Decode, Encode};

const NOW: u64 = 1_700_000_000_000;

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = HandshakeMessage::from_bytes(data) else { return };
    assert_eq!(msg.to_bytes(), data, "the encoding is canonical");
    let me = Identity::from_seeds([1; 32], [2; 32], NOW);
    let peer = Identity::from_seeds([3; 32], [4; 32], NOW);
    let random = || HandshakeRandom::new([5; 32], [6; 32]);
    match &msg {
        HandshakeMessage::Hello(hello) => {
            // As the responder, with the transport key the Hello claims (so its signature is checked).
            let _ = respond(&me, &hello.static_key, hello, random(), hello.timestamp_ms);
        }
        reply => {
            let (initiator, _) = Initiator::start(&me, peer.public_id(), random(), NOW);
            let _ = initiator.finish(reply, NOW);
        }
    }
});
