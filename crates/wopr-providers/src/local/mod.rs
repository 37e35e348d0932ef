//! The embedded llama.cpp engine on a GGUF file: offline answers with no API key.
//!
//! [`Local`] is a thin handle; the model is loaded on first use by a process-wide worker thread
//! (`engine`), which runs each call (`generate`) and streams decoded text back through a channel
//! (`output`, with UTF-8 reassembly in `utf8`). Requests become prompts in the model's own chat template
//! (`prompt`); when tools are offered, tool calls are read back out of the text (`tools`).

mod engine;
mod generate;
mod grammar;
mod output;
mod prompt;
mod tools;
mod utf8;

use std::path::PathBuf;

use futures::StreamExt;
use futures::channel::mpsc::{self, UnboundedReceiver};

use crate::{ChatRequest, ErrorKind, EventStream, Provider, ProviderError, StreamEvent};
use engine::{Job, PROVIDER};

/// The embedded model.
pub struct Local {
    path: PathBuf,
    threads: u32,
    model: String,
}

impl Local {
    /// A GGUF file, a thread count (0: one per core), and an optional display name for the model
    /// (default: the file name without `.gguf`). Nothing is loaded until the first call.
    pub fn new(path: PathBuf, threads: u32, model: Option<String>) -> Self {
        let model = model.unwrap_or_else(|| {
            path.file_stem().map_or_else(|| path.display().to_string(), |s| s.to_string_lossy().into_owned())
        });
        let threads = match threads {
            0 => std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(1)),
            n => n,
        };
        Local { path, threads, model }
    }
}

impl Provider for Local {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    fn model(&self) -> &str {
        &self.model
    }

    /// The engine's context: the model's training context, capped (see `generate`).
    fn context_window(&self) -> u32 {
        generate::MAX_CONTEXT
    }

    /// Queues the call on the model's worker; dropping the stream stops generation at the next token.
    fn stream(&self, request: ChatRequest) -> EventStream {
        let (events, received) = mpsc::unbounded();
        engine::submit(&self.path, Job { request, threads: self.threads, events });
        until_finished(received)
    }
}

/// The worker's events, ending at `Done` or an error; a worker that vanishes (it panicked) becomes an
/// error rather than a silently truncated answer.
fn until_finished(received: UnboundedReceiver<Result<StreamEvent, ProviderError>>) -> EventStream {
    Box::pin(futures::stream::unfold(Some(received), |state| async move {
        let mut received = state?;
        match received.next().await {
            Some(Ok(done @ StreamEvent::Done { .. })) => Some((Ok(done), None)),
            Some(Err(error)) => Some((Err(error), None)),
            Some(event) => Some((event, Some(received))),
            None => Some((
                Err(ProviderError::new(
                    PROVIDER,
                    ErrorKind::Unavailable,
                    "the local engine stopped before finishing the answer",
                )),
                None,
            )),
        }
    }))
}
