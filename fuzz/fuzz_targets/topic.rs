//! Topic messages (announces, withdrawals, shares, friend posts): decoding arbitrary bytes never
//! panics, a decoded message re-encodes to the same bytes, and a receiver's peer table lists a profile
//! only if it verifies, whether it came alone or in a share.
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
        TopicMessage::Share(s) => s.profiles.first().map_or_else(|| "coffee".to_string(), |p| p.topics[0].clone()),
        TopicMessage::FriendRequest(_) | TopicMessage::FriendAccept(_) => {
            assert!(message.into_listings().is_empty(), "a friend post lists no one");
            return;
        }
    };
    let mut table = PeerTable::new(PublicId([0; 32]));
    table.join(&topic);
    if let TopicMessage::Share(_) = &message {
        assert_eq!(table.offer(&topic, &message, NOW_MS), Offer::Ignored, "a share is offered profile by profile");
    }
    let mut listed = 0;
    for m in message.into_listings() {
        match table.offer(&topic, &m, NOW_MS) {
            Offer::New => {
                let TopicMessage::Announce(p) = &m else { panic!("a withdrawal listed a peer") };
                assert!(p.verify_for(&topic, NOW_MS).is_ok(), "listed without verifying");
                listed += 1;
            }
            Offer::Updated { .. } => {
                let TopicMessage::Announce(p) = &m else { panic!("a withdrawal updated a peer") };
                assert!(p.verify_for(&topic, NOW_MS).is_ok(), "updated without verifying");
            }
            Offer::Withdrawn => panic!("nothing was listed before"),
            _ => {}
        }
    }
    assert_eq!(table.peers(Some(&topic)).count(), listed);
});
