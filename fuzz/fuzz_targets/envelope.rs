//! Application message decoding and signature checking; anything that decodes must re-encode exactly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wopr_identity::PublicId;
use wopr_proto::message::Envelope;
use wopr_proto::{Decode, Encode};

fuzz_target!(|data: &[u8]| {
    if let Ok(env) = Envelope::from_bytes(data) {
        assert_eq!(env.to_bytes(), data, "the encoding is canonical");
        let me = PublicId([7; 32]);
        let _ = env.verify_from(&me, &me);
    }
});
