//! Text forms that come from outside: ids typed or pasted (`PublicId::parse`), rotation records as JSON
//! (§9 of docs/PROTOCOL.md) and `identity.json`. The first byte picks the parser. Whatever parses must
//! print back to something that parses to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wopr_identity::{IdentityFile, PublicId, RotationRecord};

fuzz_target!(|data: &[u8]| {
    let Some((selector, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    match selector % 3 {
        0 => {
            if let Ok(id) = PublicId::parse(text) {
                assert_eq!(PublicId::parse(&id.to_hex()).ok(), Some(id));
                assert_eq!(PublicId::parse(&id.to_url()).ok(), Some(id));
            }
        }
        1 => {
            if let Ok(record) = serde_json::from_str::<RotationRecord>(text) {
                let _ = record.verify();
                let again = serde_json::to_string(&record).expect("a record serializes");
                assert_eq!(serde_json::from_str::<RotationRecord>(&again).ok(), Some(record));
            }
        }
        _ => {
            if let Ok(file) = serde_json::from_str::<IdentityFile>(text) {
                let _ = file.to_identity();
            }
        }
    }
});
