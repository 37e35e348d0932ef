//! Friend requests and accepts: from bytes and from text lines. Nothing panics, a decoded message
//! re-encodes to the same bytes, its line parses back to the same value, and verifying it never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wopr_identity::PublicId;
use wopr_proto::Encode;
use wopr_proto::friend::line::FriendLine;
use wopr_proto::friend::{FriendAccept, FriendRequest};

const NOW: u64 = 1_700_000_000_000;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = FriendRequest::parse(data) {
        assert_eq!(request.to_bytes(), data, "the encoding is canonical");
        assert_eq!(FriendRequest::parse_line(&request.to_line()).as_ref(), Ok(&request));
        let _ = request.verify(&request.to, NOW);
    }
    if let Ok(accept) = FriendAccept::parse(data) {
        assert_eq!(accept.to_bytes(), data, "the encoding is canonical");
        assert_eq!(FriendAccept::parse_line(&accept.to_line()).as_ref(), Ok(&accept));
        let _ = accept.verify_among(&accept.to, NOW, []);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        match FriendLine::parse(text) {
            Ok(FriendLine::Request(r)) => {
                assert_eq!(FriendRequest::parse(&r.to_bytes()).as_ref(), Ok(&r));
                let _ = r.verify(&PublicId([0; 32]), NOW);
            }
            Ok(FriendLine::Accept(a)) => {
                assert_eq!(FriendAccept::parse(&a.to_bytes()).as_ref(), Ok(&a));
            }
            Err(_) => {}
        }
    }
});
