//! Topic messages (announces and withdrawals): decoding arbitrary bytes never panics, a decoded message
//! re-encodes to the same bytes, and a receiver's peer table lists it only if it verifies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wopr_identity::PublicId;
use wopr_proto::Encode;
use wopr_proto::discovery::{Offer, PeerTable, TopicMessage};

/// The test vectors' clock, so their genuine announces are fresh.
const NOW_MS: u64 = 1_700_000_000_000;

fuzz_target!(|data: &[u8]| {
    let Ok(message) = TopicMessage::parse(data) else { return };
    assert_eq!(message.to_bytes(), data, "the encoding is canonical");
    let topic = match &message {
        TopicMessage::Announce(p) => p.topics[0].clone(),
        TopicMessage::Withdraw(w) => w.topic.clone(),
    };
    let mut table = PeerTable::new(PublicId([0; 32]));
    table.join(&topic);
    match table.offer(&topic, &message, NOW_MS) {
        Offer::New => {
            let TopicMessage::Announce(p) = &message else { panic!("a withdrawal listed a peer") };
            assert!(p.verify_for(&topic, NOW_MS).is_ok(), "listed without verifying");
            assert_eq!(table.peers(Some(&topic)).count(), 1);
        }
        Offer::Updated { .. } | Offer::Withdrawn => panic!("nothing was listed before"),
        _ => assert_eq!(table.peers(None).count(), 0),
    }
});
