//! How much of the audit log is kept: `audit.maxRows`, `audit.maxBytes` and `audit.maxAgeDays` in
//! `config.json`. Past any of them the oldest records are dropped as new ones are written.

use serde_json::Value;

use crate::{Config, ConfigKey, StoreError, StoreResult};

const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// The retention bound of the audit log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditRetention {
    /// Most records kept (`audit.maxRows`, default 100,000).
    pub max_rows: u64,
    /// Most bytes of record content kept (`audit.maxBytes`, default 64 MiB; the newest record is always
    /// kept, whatever its size).
    pub max_bytes: u64,
    /// Oldest record kept, in ms before the newest one (`audit.maxAgeDays`, default 90 days).
    pub max_age_ms: u64,
}

impl Default for AuditRetention {
    fn default() -> Self {
        AuditRetention { max_rows: 100_000, max_bytes: 64 << 20, max_age_ms: 90 * DAY_MS }
    }
}

impl AuditRetention {
    /// The bound set in `config`, with the defaults for keys that are not set.
    pub fn from_config(config: &Config) -> StoreResult<Self> {
        let defaults = AuditRetention::default();
        let setting = |key: &str| -> StoreResult<Option<u64>> {
            let key = ConfigKey::parse(key)?;
            config.get(&key)?.map(|v| positive(&key, &v)).transpose()
        };
        Ok(AuditRetention {
            max_rows: setting("audit.maxRows")?.unwrap_or(defaults.max_rows),
            max_bytes: setting("audit.maxBytes")?.unwrap_or(defaults.max_bytes),
            max_age_ms: setting("audit.maxAgeDays")?
                .map(|days| days.saturating_mul(DAY_MS))
                .unwrap_or(defaults.max_age_ms),
        })
    }
}

/// A positive whole number, given as a JSON number or as text (`wopr config set` stores `10` as a number).
fn positive(key: &ConfigKey, v: &Value) -> StoreResult<u64> {
    let n = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    n.filter(|&n| n > 0).ok_or_else(|| {
        StoreError::InvalidConfig(format!(
            "{key} must be a positive whole number, not {v}: fix it with `wopr config set {key} <n>` or `wopr config unset {key}`"
        ))
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::Home;

    #[test]
    fn settings_override_the_defaults_and_bad_values_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let config = Config::of(&Home::at(d.path().join("h")));
        assert_eq!(AuditRetention::from_config(&config).unwrap(), AuditRetention::default());
        config.set(&ConfigKey::parse("audit.maxRows").unwrap(), json!(10)).unwrap();
        config.set(&ConfigKey::parse("audit.maxAgeDays").unwrap(), json!("2")).unwrap();
        let r = AuditRetention::from_config(&config).unwrap();
        assert_eq!((r.max_rows, r.max_age_ms, r.max_bytes), (10, 2 * DAY_MS, 64 << 20));
        for bad in [json!(0), json!(-3), json!(1.5), json!("many"), json!([1])] {
            config.set(&ConfigKey::parse("audit.maxBytes").unwrap(), bad.clone()).unwrap();
            let err = AuditRetention::from_config(&config).unwrap_err();
            assert!(
                err.to_string().contains("audit.maxBytes must be a positive whole number"),
                "{bad}: {err}"
            );
        }
    }
}
