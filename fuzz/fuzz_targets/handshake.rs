//! Handshake message decoding; anything that decodes must re-encode to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wopr_proto::handshake::HandshakeMessage;
use wopr_proto::{Decode, Encode};

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = HandshakeMessage::from_bytes(data) {
        assert_eq!(msg.to_bytes(), data, "the encoding is canonical");
    }
});
