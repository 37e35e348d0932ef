//! Where providers find their keys, base URLs, models and model files.
//!
//! Environment variables win over `config.json` (`providers.<name>.<key>`), as users expect from other
//! tools: an exported key is the one that is used.

use std::collections::HashMap;
use std::path::PathBuf;

/// File name of the default model inside `$WOPR_HOME/models/`.
pub const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// The provider-related environment and configuration, captured once.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    env: HashMap<String, String>,
    /// The `providers` object of `config.json` (or `null`).
    config: serde_json::Value,
    /// `$WOPR_HOME/models`.
    pub models_dir: PathBuf,
}

const ENV_VARS: &[&str] = &[
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "KIMI_API_KEY",
    "MOONSHOT_API_KEY",
    "KIMI_BASE_URL",
    "OPENAI_COMPATIBLE_BASE_URL",
    "OPENAI_COMPATIBLE_API_KEY",
    "OPENAI_COMPATIBLE_MODEL",
    "WOPR_MODEL",
    "WOPR_THREADS",
];

impl Settings {
    /// Settings from the process environment and the `providers` config object.
    pub fn from_env(providers_config: serde_json::Value, models_dir: PathBuf) -> Self {
        let env = ENV_VARS
            .iter()
            .filter_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()).map(|v| (k.to_string(), v)))
            .collect();
        Settings { env, config: providers_config, models_dir }
    }

    /// Settings from explicit values (tests).
    pub fn from_parts(
        env: impl IntoIterator<Item = (String, String)>,
        providers_config: serde_json::Value,
        models_dir: PathBuf,
    ) -> Self {
        Settings { env: env.into_iter().collect(), config: providers_config, models_dir }
    }

    /// First non-empty value among the environment variables, then `providers.<provider>.<key>`.
    pub fn lookup(&self, env_vars: &[&str], provider: &str, key: &str) -> Option<String> {
        env_vars.iter().find_map(|v| self.env.get(*v).cloned()).or_else(|| self.config_str(provider, key))
    }

    /// `providers.<provider>.<key>` as a string, if set.
    pub fn config_str(&self, provider: &str, key: &str) -> Option<String> {
        match self.config.get(provider)?.get(key)? {
            serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    /// The GGUF file for the local provider: `WOPR_MODEL`, `providers.local.model`, the default file in
    /// the models directory, or any `.gguf` there.
    pub fn local_model_path(&self) -> Option<PathBuf> {
        if let Some(p) = self.lookup(&["WOPR_MODEL"], "local", "model") {
            return Some(PathBuf::from(p));
        }
        let default = self.models_dir.join(DEFAULT_MODEL_FILE);
        if default.is_file() {
            return Some(default);
        }
        let mut found: Vec<PathBuf> = std::fs::read_dir(&self.models_dir)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "gguf"))
            .collect();
        found.sort();
        found.into_iter().next()
    }

    /// Threads for the local engine: `WOPR_THREADS`, `providers.local.threads`, else the core count.
    pub fn local_threads(&self) -> u32 {
        self.lookup(&["WOPR_THREADS"], "local", "threads")
            .and_then(|s| s.parse().ok())
            .filter(|n| *n > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_wins_over_config() {
        let cfg = serde_json::json!({"openai": {"apiKey": "from-config", "model": "m1"}});
        let s =
            Settings::from_parts([("OPENAI_API_KEY".into(), "from-env".into())], cfg.clone(), PathBuf::new());
        assert_eq!(s.lookup(&["OPENAI_API_KEY"], "openai", "apiKey").as_deref(), Some("from-env"));
        let s = Settings::from_parts([], cfg, PathBuf::new());
        assert_eq!(s.lookup(&["OPENAI_API_KEY"], "openai", "apiKey").as_deref(), Some("from-config"));
        assert_eq!(s.config_str("openai", "model").as_deref(), Some("m1"));
    }

    #[test]
    fn local_model_prefers_default_file_then_any_gguf() {
        let dir = tempfile::tempdir().unwrap();
        let s = Settings::from_parts([], serde_json::Value::Null, dir.path().to_path_buf());
        assert_eq!(s.local_model_path(), None);
        std::fs::write(dir.path().join("b.gguf"), b"x").unwrap();
        assert_eq!(s.local_model_path(), Some(dir.path().join("b.gguf")));
        std::fs::write(dir.path().join(DEFAULT_MODEL_FILE), b"x").unwrap();
        assert_eq!(s.local_model_path(), Some(dir.path().join(DEFAULT_MODEL_FILE)));
    }
}
