//! The process-wide llama.cpp engine: one backend, and one worker thread per model file.
//!
//! llama.cpp's backend can be initialised once per process, and loading a model takes a noticeable
//! fraction of a second, so both are done lazily on first use and kept. Each model file gets a worker
//! thread that owns the model and its context (the context borrows the model, so they live on the same
//! stack); calls to that model queue up and run one at a time, which also lets a conversation reuse the
//! context's KV cache for the prompt prefix it shares with the previous call.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SendError, Sender};
use std::sync::{LazyLock, Mutex, MutexGuard, OnceLock};

use futures::channel::mpsc::UnboundedSender;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::{LogOptions, send_logs_to_tracing};

use super::{cpu, generate};
use crate::{ChatRequest, ErrorKind, ProviderError, StreamEvent};

/// Name used in errors.
pub(super) const PROVIDER: &str = "local";

/// One model call, queued for the worker of its model file.
pub(super) struct Job {
    /// What to answer.
    pub request: ChatRequest,
    /// Threads for prompt processing and generation.
    pub threads: u32,
    /// Where the events go; closed when the caller drops the stream.
    pub events: UnboundedSender<Result<StreamEvent, ProviderError>>,
}

impl Job {
    fn fail(&self, error: ProviderError) {
        // The caller may have gone away already; then nobody needs to hear about it.
        let _ = self.events.unbounded_send(Err(error));
    }
}

/// A running worker: its id tells a retiring worker whether the map entry is still its own.
struct Worker {
    id: u64,
    jobs: Sender<Job>,
}

static WORKERS: LazyLock<Mutex<HashMap<PathBuf, Worker>>> = LazyLock::new(Default::default);
static NEXT_WORKER_ID: AtomicU64 = AtomicU64::new(0);

fn workers() -> MutexGuard<'static, HashMap<PathBuf, Worker>> {
    // A panic while holding this lock cannot leave the map half-updated: recover it.
    WORKERS.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Queues `job` for the worker of `path`, starting the worker (and loading the model) if needed.
pub(super) fn submit(path: &Path, job: Job) {
    let mut workers = workers();
    let job = match workers.get(path) {
        Some(worker) => match worker.jobs.send(job) {
            Ok(()) => return,
            // The worker is gone (it failed to load, or panicked): start a new one.
            Err(SendError(job)) => job,
        },
        None => job,
    };
    let (tx, rx) = mpsc::channel();
    let id = NEXT_WORKER_ID.fetch_add(1, Ordering::Relaxed);
    let owned = path.to_path_buf();
    let spawned = std::thread::Builder::new().name("wopr-llama".into()).spawn(move || run(owned, id, rx));
    match spawned {
        Ok(_) => match tx.send(job) {
            Ok(()) => {
                workers.insert(path.to_path_buf(), Worker { id, jobs: tx });
            }
            Err(SendError(job)) => job.fail(engine_error("the local engine thread stopped at once".into())),
        },
        Err(e) => job.fail(engine_error(format!("could not start the local engine thread: {e}"))),
    }
}

fn engine_error(message: String) -> ProviderError {
    ProviderError::new(PROVIDER, ErrorKind::Unavailable, message)
}

/// The worker: load the model, then answer jobs one after another for the rest of the process.
fn run(path: PathBuf, id: u64, jobs: Receiver<Job>) {
    let loaded = cpu::check()
        .map_err(|why| ProviderError::new(PROVIDER, ErrorKind::NotConfigured, why))
        .and_then(|()| backend())
        .and_then(|backend| Ok((backend, load_model(backend, &path)?)));
    let (backend, model) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => {
            // Leave the map first, so no new job can arrive; then tell everyone queued. The next call
            // starts a fresh worker, so a model pulled in the meantime is found.
            {
                let mut workers = workers();
                if workers.get(&path).is_some_and(|w| w.id == id) {
                    workers.remove(&path);
                }
            }
            for job in jobs.try_iter() {
                job.fail(error.clone());
            }
            return;
        }
    };
    let mut session = None;
    for job in jobs {
        if job.events.is_closed() {
            continue;
        }
        generate::answer(backend, &model, &mut session, job);
    }
}

/// The llama.cpp backend, initialised once per process with its logging sent to `tracing`.
fn backend() -> Result<&'static LlamaBackend, ProviderError> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            // llama.cpp logs every load step to stderr by default; as tracing events (target
            // `llama-cpp-2`) they stay out of the terminal unless the user asks for them.
            send_logs_to_tracing(LogOptions::default());
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| engine_error(format!("could not initialise llama.cpp: {e}")))
}

/// Checks the file, then loads it; every failure names the path and says what to do.
fn load_model(backend: &LlamaBackend, path: &Path) -> Result<LlamaModel, ProviderError> {
    let shown = path.display();
    let mut magic = [0u8; 4];
    let mut file = File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ProviderError::new(
            PROVIDER,
            ErrorKind::NotConfigured,
            format!("model file {shown} not found: run `wopr model pull` or set WOPR_MODEL to a .gguf file"),
        ),
        _ => ProviderError::new(
            PROVIDER,
            ErrorKind::NotConfigured,
            format!("cannot read model file {shown}: {e}"),
        ),
    })?;
    let corrupt = |why: String| {
        ProviderError::new(
            PROVIDER,
            ErrorKind::BadRequest,
            format!(
                "{shown} is not a usable GGUF model ({why}): delete it and run `wopr model pull`, or set WOPR_MODEL to another .gguf file"
            ),
        )
    };
    if file.read_exact(&mut magic).is_err() || &magic != b"GGUF" {
        return Err(corrupt("no GGUF header; corrupt or incomplete download?".into()));
    }
    drop(file);
    let started = std::time::Instant::now();
    let model = LlamaModel::load_from_file(backend, path, &LlamaModelParams::default())
        .map_err(|e| corrupt(format!("llama.cpp could not load it: {e}")))?;
    tracing::debug!(path = %shown, elapsed = ?started.elapsed(), "local model loaded");
    Ok(model)
}
