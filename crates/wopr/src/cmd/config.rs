//! `wopr config get|set|unset|list`.

use anyhow::Result;
use serde_json::Value;
use wopr_store::{Config, ConfigKey};

use super::Ctx;
use crate::cli::ConfigCmd;
use crate::output;

pub fn run(ctx: &Ctx, cmd: ConfigCmd) -> Result<()> {
    let config = Config::of(&ctx.home);
    match cmd {
        ConfigCmd::Get { key, json } => {
            let key = ConfigKey::parse(&key)?;
            match config.get(&key)? {
                Some(Value::String(s)) if !json => println!("{s}"),
                Some(v) => output::json(&v)?,
                None => anyhow::bail!("{key} is not set"),
            }
        }
        ConfigCmd::Set { key, value } => {
            let key = ConfigKey::parse(&key)?;
            config.set(&key, parse_value(&value))?;
        }
        ConfigCmd::Unset { key } => {
            let key = ConfigKey::parse(&key)?;
            if !config.unset(&key)? {
                eprintln!("{key} was not set");
            }
        }
        ConfigCmd::List { json: true } => output::json(&config.load()?)?,
        ConfigCmd::List { json: false } => {
            for (k, v) in config.list()? {
                println!("{k} = {v}");
            }
        }
    }
    Ok(())
}

/// A JSON value if the text is JSON, else the text as a string (so `set p2p.relay disabled` works).
fn parse_value(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn values_are_json_or_strings() {
        assert_eq!(super::parse_value(r#"{"a":[1]}"#), json!({"a":[1]}));
        assert_eq!(super::parse_value("42"), json!(42));
        assert_eq!(super::parse_value("true"), json!(true));
        assert_eq!(super::parse_value("disabled"), json!("disabled"));
        assert_eq!(super::parse_value("127.0.0.1:0"), json!("127.0.0.1:0"));
    }
}
