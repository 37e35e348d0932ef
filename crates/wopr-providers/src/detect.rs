//! Which providers exist, which are usable here, and auto-detection.
//!
//! Order, as the seeds say: Kimi, Anthropic, OpenAI (by API key), then a configured OpenAI-compatible
//! server, then the embedded local model.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::anthropic::Anthropic;
use crate::local::Local;
use crate::openai::OpenAi;
use crate::{ErrorKind, Provider, ProviderError, Settings};

/// The providers WOPR knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderName {
    /// Moonshot AI's Kimi (OpenAI wire format).
    Kimi,
    /// Anthropic Messages API.
    Anthropic,
    /// OpenAI Chat Completions.
    Openai,
    /// Any server speaking OpenAI Chat Completions (Ollama, llama-server, vLLM).
    OpenaiCompatible,
    /// The embedded llama.cpp engine on a GGUF file.
    Local,
}

impl ProviderName {
    /// All providers, in auto-detection order.
    pub const ALL: [ProviderName; 5] = [
        ProviderName::Kimi,
        ProviderName::Anthropic,
        ProviderName::Openai,
        ProviderName::OpenaiCompatible,
        ProviderName::Local,
    ];

    /// The name users type.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderName::Kimi => "kimi",
            ProviderName::Anthropic => "anthropic",
            ProviderName::Openai => "openai",
            ProviderName::OpenaiCompatible => "openai-compatible",
            ProviderName::Local => "local",
        }
    }

    fn default_model(self) -> &'static str {
        match self {
            ProviderName::Kimi => "kimi-k2-0905-preview",
            ProviderName::Anthropic => "claude-sonnet-4-5",
            ProviderName::Openai => "gpt-4.1-mini",
            ProviderName::OpenaiCompatible | ProviderName::Local => "",
        }
    }
}

impl fmt::Display for ProviderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ProviderName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ProviderName::ALL.into_iter().find(|p| p.as_str() == s).ok_or_else(|| {
            format!("unknown provider {s:?}: choose one of kimi, anthropic, openai, openai-compatible, local")
        })
    }
}

/// Whether a provider can be used here, and why not.
#[derive(Clone, Debug, Serialize)]
pub struct Availability {
    /// The provider.
    pub name: ProviderName,
    /// Usable now.
    pub available: bool,
    /// What it would use, or what is missing.
    pub detail: String,
}

/// A provider's connection details, or why it has none.
enum Setup {
    Http { base_url: String, api_key: Option<String>, model: Option<String> },
    Local { path: std::path::PathBuf },
    Missing(String),
}

fn setup(name: ProviderName, s: &Settings) -> Setup {
    let key = |vars: &[&str]| s.lookup(vars, name.as_str(), "apiKey");
    let model = s.config_str(name.as_str(), "model");
    match name {
        ProviderName::Kimi => match key(&["KIMI_API_KEY", "MOONSHOT_API_KEY"]) {
            Some(k) => Setup::Http {
                base_url: s
                    .lookup(&["KIMI_BASE_URL"], "kimi", "baseUrl")
                    .unwrap_or_else(|| "https://api.moonshot.ai/v1".into()),
                api_key: Some(k),
                model,
            },
            None => Setup::Missing("no KIMI_API_KEY or MOONSHOT_API_KEY, no providers.kimi.apiKey".into()),
        },
        ProviderName::Anthropic => match key(&["ANTHROPIC_API_KEY"]) {
            Some(k) => Setup::Http {
                base_url: s
                    .lookup(&["ANTHROPIC_BASE_URL"], "anthropic", "baseUrl")
                    .unwrap_or_else(|| "https://api.anthropic.com".into()),
                api_key: Some(k),
                model,
            },
            None => Setup::Missing("no ANTHROPIC_API_KEY, no providers.anthropic.apiKey".into()),
        },
        ProviderName::Openai => match key(&["OPENAI_API_KEY"]) {
            Some(k) => Setup::Http {
                base_url: s
                    .lookup(&["OPENAI_BASE_URL"], "openai", "baseUrl")
                    .unwrap_or_else(|| "https://api.openai.com/v1".into()),
                api_key: Some(k),
                model,
            },
            None => Setup::Missing("no OPENAI_API_KEY, no providers.openai.apiKey".into()),
        },
        ProviderName::OpenaiCompatible => {
            match s.lookup(&["OPENAI_COMPATIBLE_BASE_URL"], "openai-compatible", "baseUrl") {
                Some(base_url) => Setup::Http {
                    base_url,
                    api_key: key(&["OPENAI_COMPATIBLE_API_KEY"]),
                    model: s.lookup(&["OPENAI_COMPATIBLE_MODEL"], "openai-compatible", "model"),
                },
                None => Setup::Missing(
                    "no OPENAI_COMPATIBLE_BASE_URL, no providers.openai-compatible.baseUrl".into(),
                ),
            }
        }
        ProviderName::Local => match s.local_model_path() {
            Some(path) if path.is_file() => match crate::local::cpu::check() {
                Ok(()) => Setup::Local { path },
                Err(why) => Setup::Missing(why),
            },
            Some(path) => Setup::Missing(format!("model file {} does not exist", path.display())),
            None => Setup::Missing(format!(
                "no model in {}: run `wopr model pull` or set WOPR_MODEL",
                s.models_dir.display()
            )),
        },
    }
}

/// Every provider, in auto-detection order, with whether it is usable here.
pub fn detect(settings: &Settings) -> Vec<Availability> {
    ProviderName::ALL
        .into_iter()
        .map(|name| match setup(name, settings) {
            Setup::Http { base_url, model, .. } => Availability {
                name,
                available: true,
                detail: format!(
                    "{} at {}",
                    model.as_deref().unwrap_or(name.default_model_or_auto()),
                    base_url
                ),
            },
            Setup::Local { path } => {
                Availability { name, available: true, detail: format!("model {}", path.display()) }
            }
            Setup::Missing(why) => Availability { name, available: false, detail: why },
        })
        .collect()
}

impl ProviderName {
    fn default_model_or_auto(self) -> &'static str {
        match self.default_model() {
            "" => "server's model",
            m => m,
        }
    }
}

/// Builds a provider: `name`, or the first available one. `model` overrides the configured model.
pub fn resolve(
    name: Option<ProviderName>,
    model: Option<&str>,
    settings: &Settings,
) -> Result<Box<dyn Provider>, ProviderError> {
    let name = match name {
        Some(n) => n,
        None => detect(settings).into_iter().find(|a| a.available).map(|a| a.name).ok_or_else(|| {
            ProviderError::new(
                "auto",
                ErrorKind::NotConfigured,
                "no provider is available: run `wopr model pull` for the offline model, or set an API key",
            )
        })?,
    };
    let provider: Box<dyn Provider> = match setup(name, settings) {
        Setup::Missing(why) => return Err(ProviderError::new(name.as_str(), ErrorKind::NotConfigured, why)),
        Setup::Local { path } => {
            Box::new(Local::new(path, settings.local_threads(), model.map(str::to_string)))
        }
        Setup::Http { base_url, api_key, model: configured } => {
            let model = model.map(str::to_string).or(configured);
            match name {
                ProviderName::Anthropic => Box::new(Anthropic::new(
                    base_url,
                    api_key.unwrap_or_default(),
                    model.unwrap_or_else(|| name.default_model().into()),
                )),
                ProviderName::OpenaiCompatible => {
                    Box::new(OpenAi::new(name.as_str(), base_url, api_key, model))
                }
                _ => Box::new(OpenAi::new(
                    name.as_str(),
                    base_url,
                    api_key,
                    Some(model.unwrap_or_else(|| name.default_model().into())),
                )),
            }
        }
    };
    Ok(provider)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(env: &[(&str, &str)], cfg: serde_json::Value) -> Settings {
        Settings::from_parts(
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
            cfg,
            std::path::PathBuf::from("/nonexistent-models"),
        )
    }

    #[test]
    fn auto_detection_follows_the_seed_order() {
        let s = settings(&[("OPENAI_API_KEY", "o"), ("ANTHROPIC_API_KEY", "a")], serde_json::Value::Null);
        assert_eq!(resolve(None, None, &s).unwrap().name(), "anthropic");
        let s = settings(&[("OPENAI_API_KEY", "o"), ("MOONSHOT_API_KEY", "k")], serde_json::Value::Null);
        assert_eq!(resolve(None, None, &s).unwrap().name(), "kimi");
        let s = settings(&[], serde_json::json!({"openai-compatible": {"baseUrl": "http://127.0.0.1:1/v1"}}));
        assert_eq!(resolve(None, None, &s).unwrap().name(), "openai-compatible");
    }

    #[test]
    fn nothing_available_says_how_to_fix_it() {
        let s = settings(&[], serde_json::Value::Null);
        let err = resolve(None, None, &s).err().unwrap();
        assert_eq!(err.kind, ErrorKind::NotConfigured);
        assert!(err.message.contains("wopr model pull"));
        let local = detect(&s).into_iter().find(|a| a.name == ProviderName::Local).unwrap();
        assert!(!local.available);
        assert!(local.detail.contains("wopr model pull"));
    }

    #[test]
    fn explicit_provider_without_key_is_not_configured() {
        let s = settings(&[], serde_json::Value::Null);
        let err = resolve(Some(ProviderName::Anthropic), None, &s).err().unwrap();
        assert_eq!(err.kind, ErrorKind::NotConfigured);
        assert!(err.message.contains("ANTHROPIC_API_KEY"));
    }

    #[test]
    fn provider_names_round_trip() {
        for p in ProviderName::ALL {
            assert_eq!(p.as_str().parse::<ProviderName>().unwrap(), p);
        }
        assert!("claude".parse::<ProviderName>().is_err());
    }
}
