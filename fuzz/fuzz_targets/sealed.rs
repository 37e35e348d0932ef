//! Opening sealed frames: arbitrary bytes must fail cleanly, never panic or succeed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wopr_proto::channel::{Direction, OpeningKey};

fuzz_target!(|data: &[u8]| {
    let mut key = OpeningKey::new(&[0x42; 32], Direction::InitiatorToResponder.label());
    assert!(key.open(data).is_err());
});
