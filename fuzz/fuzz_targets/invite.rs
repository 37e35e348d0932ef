//! Invite token parsing, from raw bytes and from `wop1://` strings.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wopr_proto::invite::InviteToken;
use wopr_proto::{Decode, Encode};

fuzz_target!(|data: &[u8]| {
    if let Ok(token) = InviteToken::from_bytes(data) {
        assert_eq!(token.to_bytes(), data, "the encoding is canonical");
        assert_eq!(InviteToken::decode_uri(&token.to_uri()).ok(), Some(token));
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = InviteToken::parse(s, 1_700_000_000_000);
    }
});
