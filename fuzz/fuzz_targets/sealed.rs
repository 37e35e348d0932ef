//! Opening sealed frames: arbitrary bytes must fail cleanly, never panic or succeed, and what a sealing
//! key seals its opening key opens.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wopr_proto::channel::{Direction, OpeningKey, SealingKey};

fuzz_target!(|data: &[u8]| {
    let aad = Direction::InitiatorToResponder.stream_label(4);
    let mut open = OpeningKey::new(&[0x42; 32], &aad);
    assert!(open.open(data).is_err(), "a frame nobody sealed must not open");
    assert!(open.open(data).is_err(), "the key stays failed");
    let mut seal = SealingKey::new(&[0x42; 32], &aad);
    let mut open = OpeningKey::new(&[0x42; 32], &aad);
    let body = seal.seal(data).expect("fuzz inputs are below the frame limit");
    assert_eq!(open.open(&body).expect("opens"), data);
});
