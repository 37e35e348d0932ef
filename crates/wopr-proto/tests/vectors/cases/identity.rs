//! Ids as text (§2) and rotation records as JSON (§9).

use serde_json::{Value, json};

use super::{Accepted, Cases, Fails};
use crate::fixtures::ALICE;
use crate::world::World;

pub fn public_ids(identities: &Value) -> Cases<'_> {
    let mut c = Cases::new("public_id", identities);
    let hex = ALICE.id().to_hex();
    let text = |t: String| json!({ "text": t });
    c.add("lowercase_hex", text(hex.clone()), Accepted);
    c.add("uppercase_hex", text(hex.to_uppercase()), Accepted);
    c.add("wopr_url", text(format!("wopr://{hex}")), Accepted);
    c.add("surrounding_whitespace_is_trimmed", text(format!(" \twopr://{hex}\n")), Accepted);
    // Parsing checks that the key is a curve point, not its order: a small-order key parses, and every
    // signature by it is refused (see the envelope cases).
    c.add("small_order_point_parses", text(format!("01{}", "00".repeat(31))), Accepted);
    // y = p + 3 is a non-canonical encoding of a valid point: accepted, as ed25519-dalek decompresses it.
    c.add("non_canonical_y_parses", text(format!("f0{}7f", "ff".repeat(30))), Accepted);
    let fails = Fails("InvalidPublicKey", None);
    c.add("63_hex_characters", text(hex[..63].to_string()), fails);
    c.add("65_hex_characters", text(format!("{hex}0")), fails);
    c.add("uppercase_scheme", text(format!("WOPR://{hex}")), fails);
    c.add("scheme_without_both_slashes", text(format!("wopr:/{hex}")), fails);
    c.add("0x_prefix", text(format!("0x{hex}")), fails);
    c.add("non_hex_character", text(format!("{}g", &hex[..63])), fails);
    c.add("whitespace_after_the_scheme", text(format!("wopr:// {hex}")), fails);
    c.add("not_a_curve_point", text(format!("02{}", "00".repeat(31))), fails);
    c.add("empty", text(String::new()), fails);
    c
}

pub fn rotation_json<'a>(world: &World, identities: &'a Value) -> Cases<'a> {
    let mut c = Cases::new("rotation_json", identities);
    let record = serde_json::to_value(&world.rotation).expect("json");
    let json = |v: &Value| json!({ "json": v.to_string() });
    let with = |edit: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut v = record.clone();
        edit(v.as_object_mut().expect("object"));
        v
    };
    let upper = |field: &str| {
        let field = field.to_string();
        move |m: &mut serde_json::Map<String, Value>| {
            let s = m[&field].as_str().expect("hex").to_uppercase();
            m.insert(field.clone(), json!(s));
        }
    };
    c.add("as_written", json(&record), Accepted);
    c.add(
        "uppercase_hex_everywhere",
        {
            let mut v = record.clone();
            for f in ["oldKey", "newKey", "newEncryptPub", "oldSig", "newSig"] {
                upper(f)(v.as_object_mut().expect("object"));
            }
            json(&v)
        },
        Accepted,
    );
    c.add(
        "keys_as_wopr_urls",
        json(&with(&|m| {
            for f in ["oldKey", "newKey"] {
                let url = format!("wopr://{}", m[f].as_str().expect("hex"));
                m.insert(f.into(), json!(url));
            }
        })),
        Accepted,
    );
    c.add(
        "key_with_surrounding_whitespace",
        json(&with(&|m| {
            let padded = format!(" {}\n", m["oldKey"].as_str().expect("hex"));
            m.insert("oldKey".into(), json!(padded));
        })),
        Accepted,
    );
    c.add(
        "unknown_fields_are_ignored",
        json(&with(&|m| drop(m.insert("note".into(), json!("hi"))))),
        Accepted,
    );
    let reversed = {
        let fields: Vec<String> = record
            .as_object()
            .expect("object")
            .iter()
            .rev()
            .map(|(k, v)| format!("{}:{v}", json!(k)))
            .collect();
        format!("{{{}}}", fields.join(","))
    };
    c.add("fields_in_another_order", json!({ "json": reversed }), Accepted);
    let json_error = Fails("Json", None);
    c.add("missing_new_sig", json(&with(&|m| drop(m.remove("newSig")))), json_error);
    c.add("unknown_reason", json(&with(&|m| drop(m.insert("reason".into(), json!("weekly"))))), json_error);
    c.add(
        "reason_as_its_wire_number",
        json(&with(&|m| drop(m.insert("reason".into(), json!(1))))),
        json_error,
    );
    c.add(
        "timestamp_as_a_string",
        json(&with(&|m| {
            let t = m["timestamp"].to_string();
            m.insert("timestamp".into(), json!(t));
        })),
        json_error,
    );
    c.add(
        "signature_of_63_bytes",
        json(&with(&|m| {
            let s = m["oldSig"].as_str().expect("hex")[..126].to_string();
            m.insert("oldSig".into(), json!(s));
        })),
        json_error,
    );
    c.add(
        "key_not_a_curve_point",
        json(&with(&|m| drop(m.insert("newKey".into(), json!(format!("02{}", "00".repeat(31))))))),
        json_error,
    );
    c.add(
        "snake_case_field_names",
        {
            let mut v = serde_json::Map::new();
            for (k, val) in record.as_object().expect("object") {
                let snake: String = k
                    .chars()
                    .flat_map(
                        |ch| if ch.is_uppercase() { vec!['_', ch.to_ascii_lowercase()] } else { vec![ch] },
                    )
                    .collect();
                v.insert(snake, val.clone());
            }
            json(&Value::Object(v))
        },
        json_error,
    );
    let text = record.to_string();
    let duplicated = format!("{},\"reason\":\"upgrade\"}}", &text[..text.len() - 1]);
    c.add("duplicate_member", json!({ "json": duplicated }), json_error);
    let bad = Fails("BadSignature", None);
    c.add(
        "timestamp_changed",
        json(&with(&|m| {
            let t = m["timestamp"].as_u64().expect("timestamp") + 1;
            m.insert("timestamp".into(), json!(t));
        })),
        bad,
    );
    c.add("reason_changed", json(&with(&|m| drop(m.insert("reason".into(), json!("compromise"))))), bad);
    c.add(
        "signatures_swapped",
        json(&with(&|m| {
            let (old, new) = (m["oldSig"].clone(), m["newSig"].clone());
            m.insert("oldSig".into(), new);
            m.insert("newSig".into(), old);
        })),
        bad,
    );
    c
}
