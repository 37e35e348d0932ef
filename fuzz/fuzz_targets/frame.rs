//! Frame decoding: one-shot and incremental, with the input split at a fuzzer-chosen point.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wopr_proto::frame::{FrameDecoder, MAX_FRAME, decode_frame};

fuzz_target!(|data: &[u8]| {
    let _ = decode_frame(data);
    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let mut decoder = FrameDecoder::new();
    for piece in [&data[..split], &data[split..]] {
        if let Ok(frames) = decoder.decode_all(piece) {
            for frame in frames {
                assert!(frame.len() <= MAX_FRAME);
            }
        }
    }
    let _ = decoder.finish();
});
