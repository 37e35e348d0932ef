//! `config.json`: the whole document and single dotted keys.

use serde_json::Value;
use wopr_store::{Config, ConfigKey};

use super::error::Kind;
use super::types::ConfigEntry;
use super::{ApiError, ApiResult, Core};
use crate::bus::BusEvent;

impl Core {
    /// The whole configuration.
    pub fn config(&self) -> ApiResult<Value> {
        Ok(Config::of(&self.home).load()?)
    }

    /// One key's value.
    pub fn config_get(&self, key: &str) -> ApiResult<ConfigEntry> {
        let parsed = ConfigKey::parse(key)?;
        match Config::of(&self.home).get(&parsed)? {
            Some(value) => Ok(ConfigEntry { key: parsed.to_string(), value }),
            None => Err(ApiError::failure(format!("{parsed} is not set")).of_kind(Kind::NotFound)),
        }
    }

    /// Sets a key (the seeds' `PUT /config/plugins.data.router`).
    pub fn config_set(&self, key: &str, value: Value) -> ApiResult<ConfigEntry> {
        let parsed = ConfigKey::parse(key)?;
        Config::of(&self.home).set(&parsed, value.clone())?;
        self.bus.send(BusEvent::ConfigChanged { key: parsed.to_string() });
        Ok(ConfigEntry { key: parsed.to_string(), value })
    }

    /// Removes a key.
    pub fn config_unset(&self, key: &str) -> ApiResult<()> {
        let parsed = ConfigKey::parse(key)?;
        if !Config::of(&self.home).unset(&parsed)? {
            return Err(ApiError::failure(format!("{parsed} was not set")).of_kind(Kind::NotFound));
        }
        self.bus.send(BusEvent::ConfigChanged { key: parsed.to_string() });
        Ok(())
    }
}
