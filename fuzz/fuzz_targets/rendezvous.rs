//! Rendezvous values (docs/PROTOCOL.md §16.3): the input is sealed as a value's plaintext under a fixed
//! topic's slot key, so the entry decoder sees every shape; what opens re-seals to the same bytes and
//! its entries verify (or are refused) without panicking. The raw input, opened directly, never opens.
#![no_main]

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{AeadInOut, Key, KeyInit, Nonce};
use libfuzzer_sys::fuzz_target;
use wopr_rendezvous::TopicKeys;
use wopr_rendezvous::value::{self, MAX_PLAINTEXT, NONCE_LEN};

const NOW: u64 = 1_700_000_000_000;

fuzz_target!(|data: &[u8]| {
    let topic = TopicKeys::derive("fuzz").expect("a valid name");
    let keys = topic.slot(NOW / 60_000);
    assert!(value::open(&keys, 0, data).is_err(), "bytes nobody sealed must not open");
    if data.len() > MAX_PLAINTEXT {
        return;
    }
    let nonce = [7u8; NONCE_LEN];
    let mut buf = data.to_vec();
    let cipher = Aes256Gcm::new(&Key::<Aes256Gcm>::from(*keys.seal_key()));
    let tag = cipher
        .encrypt_inout_detached(&Nonce::<Aes256Gcm>::from(nonce), keys.salt(0), buf.as_mut_slice().into())
        .expect("short plaintext");
    let sealed = [nonce.as_slice(), &buf, &tag].concat();
    if let Ok(entries) = value::open(&keys, 0, &sealed) {
        let again = value::seal(&keys, 0, &entries, nonce).expect("what opened fits");
        assert_eq!(again, sealed, "the encoding is canonical");
        for entry in &entries {
            let _ = entry.verify(&topic, NOW);
        }
    }
});
