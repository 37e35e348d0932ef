//! Discovery profiles: decoding arbitrary bytes never panics, a decoded profile re-encodes to the same
//! bytes, and checking it for a topic never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wopr_proto::Encode;
use wopr_proto::discovery::Profile;

fuzz_target!(|data: &[u8]| {
    if let Ok(profile) = Profile::parse(data) {
        assert_eq!(profile.to_bytes(), data, "the encoding is canonical");
        for topic in profile.topics.iter().take(2) {
            let _ = profile.verify_for(topic, 1_700_000_000_000);
        }
    }
});
