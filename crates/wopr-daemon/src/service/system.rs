//! The daemon itself, providers, models and the sandbox doctor.

use tokio::sync::mpsc;
use wopr_identity::PublicId;

use super::types::{DaemonStatus, ModelFile, ProviderView, PullEvent};
use super::{ApiError, ApiResult, Core};

impl Core {
    /// Pid, uptime, id, addresses, relay, connected peers, ticket, where the API listens.
    pub async fn status(&self) -> ApiResult<DaemonStatus> {
        let node = self.node().await?;
        let peers = node.connected_peers();
        Ok(DaemonStatus {
            pid: std::process::id(),
            uptime_secs: self.started.elapsed().as_secs(),
            id: node.id().to_hex(),
            short_id: node.id().short(),
            addresses: node.addr_hints(),
            relay: node.config().relay.to_string(),
            peer_paths: peers
                .iter()
                .filter_map(|p| Some((p.to_hex(), node.path_to(p)?.to_string())))
                .collect(),
            connected_peers: peers.iter().map(PublicId::to_hex).collect(),
            ticket: node.ticket(),
            home: self.home.root().display().to_string(),
            api: self.api_address().map(str::to_string),
        })
    }

    /// Every provider, whether it is usable here and why not.
    pub fn providers(&self) -> ApiResult<Vec<ProviderView>> {
        let list = wopr_providers::detect(&self.provider_settings()?);
        let chosen = list.iter().position(|a| a.available);
        Ok(list
            .into_iter()
            .enumerate()
            .map(|(i, a)| ProviderView {
                name: a.name.to_string(),
                available: a.available,
                detail: a.detail,
                default: Some(i) == chosen,
            })
            .collect())
    }

    /// The model files in `models/` and the one the local provider uses.
    pub fn models(&self) -> ApiResult<Vec<ModelFile>> {
        Ok(model_files(&self.home, &self.provider_settings()?))
    }

    /// Downloads the default model (unless it is there and `force` is off), reporting progress.
    pub async fn pull_model(
        &self,
        force: bool,
        events: &mpsc::UnboundedSender<PullEvent>,
    ) -> ApiResult<PullEvent> {
        let mut last = 0;
        let pulled =
            wopr_providers::model_pull::pull_default_model(&self.home.models_dir(), force, |done, total| {
                // One event per MiB is plenty for a progress bar.
                if done == 0 || done >= last + (1 << 20) || Some(done) == total {
                    last = done;
                    let _ = events.send(PullEvent::Progress { done, total });
                }
            })
            .await
            .map_err(|e| ApiError::failure(e.to_string()))?;
        Ok(PullEvent::Done {
            path: pulled.path.display().to_string(),
            size: pulled.size,
            downloaded: pulled.downloaded,
        })
    }

    /// Probes every sandbox property here (takes a few seconds: it runs small attacks in the sandbox).
    pub async fn sandbox_doctor(&self) -> ApiResult<wopr_sandbox::doctor::Report> {
        tokio::task::spawn_blocking(wopr_sandbox::doctor::run)
            .await
            .map_err(|e| ApiError::failure(format!("the sandbox doctor failed: {e}")))
    }
}

/// The `.gguf` files in `models/`, and the local provider's model wherever it is (`wopr model list`).
pub fn model_files(home: &wopr_store::Home, settings: &wopr_providers::Settings) -> Vec<ModelFile> {
    let dir = home.models_dir();
    let active = settings.local_model_path();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|x| x == "gguf"));
    files.sort();
    if let Some(a) = &active
        && !files.contains(a)
    {
        files.insert(0, a.clone());
    }
    files
        .iter()
        .map(|p| ModelFile {
            path: p.display().to_string(),
            size: std::fs::metadata(p).map(|m| m.len()).ok(),
            active: Some(p) == active.as_ref(),
        })
        .collect()
}
