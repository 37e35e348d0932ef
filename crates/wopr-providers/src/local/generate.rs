//! One model call on the worker thread: prompt, prefill (reusing the cached prefix), sample, stream.

use std::num::NonZeroU32;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;

use super::engine::{Job, PROVIDER};
use super::grammar;
use super::output::{Sink, TextOut};
use super::prompt::turns;
use crate::{ChatRequest, ErrorKind, ProviderError, StopReason, StreamEvent, Usage};

/// The context window: the model's training context, at most this.
pub(super) const MAX_CONTEXT: u32 = 4096;
/// Tokens handed to llama.cpp per prompt-processing call.
const BATCH: u32 = 512;
/// Temperature when the request leaves it to the provider.
const DEFAULT_TEMPERATURE: f32 = 0.7;
/// Fixed seed: the same request gives the same answer, which makes sessions reproducible.
const SEED: u32 = 0x574F_5052;

/// A model's context, kept between calls, with the tokens its KV cache holds.
pub(super) struct Session<'m> {
    ctx: LlamaContext<'m>,
    threads: u32,
    cached: Vec<LlamaToken>,
}

/// Answers one job, sending events as they come; any failure becomes the stream's last item.
pub(super) fn answer<'m>(
    backend: &LlamaBackend,
    model: &'m LlamaModel,
    session: &mut Option<Session<'m>>,
    job: Job,
) {
    let Job { request, threads, events } = job;
    let sink = Sink::new(events);
    if let Err(error) = generate(backend, model, session, &request, threads, &sink) {
        sink.fail(error);
    }
}

fn generate<'m>(
    backend: &LlamaBackend,
    model: &'m LlamaModel,
    slot: &mut Option<Session<'m>>,
    request: &ChatRequest,
    threads: u32,
    sink: &Sink,
) -> Result<(), ProviderError> {
    let prompt = render(model, request)?;
    let tokens = model.vocab().tokenize(prompt.as_bytes(), true, true);
    let session = session(backend, model, slot, threads)?;
    let n_ctx = session.ctx.n_ctx() as usize;
    if tokens.len() >= n_ctx {
        return Err(ProviderError::new(
            PROVIDER,
            ErrorKind::ContextTooLong,
            format!("the prompt is {} tokens but the model's context window holds {n_ctx}", tokens.len()),
        ));
    }
    if tokens.is_empty() {
        return Err(ProviderError::new(PROVIDER, ErrorKind::BadRequest, "the prompt is empty"));
    }
    let mut batch = LlamaBatch::new(BATCH as usize, 1);
    let Some(mut logits_at) = session.prefill(&tokens, &mut batch, sink)? else { return Ok(()) };

    let vocab = model.vocab();
    let mut sampler = sampler(model.n_vocab(), request.temperature);
    let budget = if request.max_tokens == 0 { usize::MAX } else { request.max_tokens as usize };
    let mut text = TextOut::new(!request.tools.is_empty());
    let mut generated = 0usize;
    let mut constrained = false;
    let mut piece = Vec::with_capacity(32);
    let stop = loop {
        if sink.closed() {
            tracing::debug!(generated, "the caller dropped the stream; generation stopped");
            return Ok(());
        }
        let token = sampler.sample(&session.ctx, logits_at);
        if vocab.is_eog(token) {
            break StopReason::EndTurn;
        }
        generated += 1;
        piece.clear();
        vocab.token_to_piece_into(token, &mut piece, false, None);
        if text.push(&piece, sink) {
            break StopReason::ToolUse;
        }
        if !constrained && text.at_call_body() {
            // The model opened a tool call: the rest of it must be JSON naming an offered tool.
            match LlamaSampler::grammar(model, &grammar::tool_call(&request.tools), "root") {
                Ok(g) => {
                    sampler =
                        LlamaSampler::chain_simple([g, self::sampler(model.n_vocab(), request.temperature)]);
                    constrained = true;
                }
                Err(e) => {
                    tracing::warn!(%e, "the tool-call grammar was refused; the call is parsed as written")
                }
            }
        }
        if generated >= budget || session.cached.len() + 1 >= n_ctx {
            break StopReason::MaxTokens;
        }
        logits_at = session.decode(&[token], &mut batch)?;
    };
    let stop = if text.finish(sink) { StopReason::ToolUse } else { stop };
    let usage = Usage { input_tokens: tokens.len() as u64, output_tokens: generated as u64 };
    sink.send(StreamEvent::Usage { usage });
    sink.send(StreamEvent::Done { stop_reason: stop });
    Ok(())
}

/// The prompt in the model's own chat template (ChatML when the file has none).
fn render(model: &LlamaModel, request: &ChatRequest) -> Result<String, ProviderError> {
    let template = model
        .chat_template(None)
        .or_else(|_| LlamaChatTemplate::new("chatml"))
        .map_err(|e| bad_request(format!("no usable chat template: {e}")))?;
    let messages = turns(request)
        .into_iter()
        .map(|t| LlamaChatMessage::new(t.role.to_string(), t.content))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad_request(format!("message cannot be passed to llama.cpp: {e}")))?;
    model
        .apply_chat_template(&template, &messages, true)
        .map_err(|e| bad_request(format!("the model's chat template failed: {e}")))
}

fn bad_request(message: String) -> ProviderError {
    ProviderError::new(PROVIDER, ErrorKind::BadRequest, message)
}

fn engine_failure(message: String) -> ProviderError {
    ProviderError::new(PROVIDER, ErrorKind::Unavailable, message)
}

/// The session for this thread count, created on first use (or when the thread count changes).
fn session<'s, 'm>(
    backend: &LlamaBackend,
    model: &'m LlamaModel,
    slot: &'s mut Option<Session<'m>>,
    threads: u32,
) -> Result<&'s mut Session<'m>, ProviderError> {
    if slot.as_ref().is_some_and(|s| s.threads != threads) {
        *slot = None;
    }
    if slot.is_none() {
        let n_ctx = match model.n_ctx_train() {
            0 => MAX_CONTEXT,
            trained => trained.min(MAX_CONTEXT),
        };
        let n_threads = i32::try_from(threads).unwrap_or(i32::MAX);
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(n_ctx))
            .with_n_batch(BATCH)
            .with_n_ubatch(BATCH)
            .with_n_threads(n_threads)
            .with_n_threads_batch(n_threads);
        let ctx = model
            .new_context(backend, params)
            .map_err(|e| engine_failure(format!("could not create a llama.cpp context: {e}")))?;
        *slot = Some(Session { ctx, threads, cached: Vec::new() });
    }
    slot.as_mut().ok_or_else(|| engine_failure("no llama.cpp context".into()))
}

impl Session<'_> {
    /// Brings the KV cache to `tokens`, decoding only what differs from the previous call. Returns the
    /// batch index of the last token's logits, or `None` if the caller went away meanwhile.
    fn prefill(
        &mut self,
        tokens: &[LlamaToken],
        batch: &mut LlamaBatch,
        sink: &Sink,
    ) -> Result<Option<i32>, ProviderError> {
        let mut keep = self.cached.iter().zip(tokens).take_while(|(a, b)| a == b).count();
        // The last prompt token is always decoded again: its logits pick the first answer token.
        keep = keep.min(tokens.len() - 1);
        if keep < self.cached.len() {
            let trimmed = u32::try_from(keep)
                .ok()
                .and_then(|p0| self.ctx.clear_kv_cache_seq(Some(0), Some(p0), None).ok());
            if trimmed != Some(true) {
                self.ctx.clear_kv_cache();
                keep = 0;
            }
            self.cached.truncate(keep);
        }
        let mut logits_at = 0;
        for chunk in tokens[keep..].chunks(BATCH as usize) {
            if sink.closed() {
                return Ok(None);
            }
            logits_at = self.decode(chunk, batch)?;
        }
        Ok(Some(logits_at))
    }

    /// Decodes `tokens` after the cached ones, asking for logits of the last one; returns its index.
    fn decode(&mut self, tokens: &[LlamaToken], batch: &mut LlamaBatch) -> Result<i32, ProviderError> {
        batch.clear();
        let start = self.cached.len();
        for (i, token) in tokens.iter().enumerate() {
            let pos = i32::try_from(start + i).map_err(|_| engine_failure("position overflow".into()))?;
            batch
                .add(*token, pos, &[0], i + 1 == tokens.len())
                .map_err(|e| engine_failure(format!("llama.cpp batch: {e}")))?;
        }
        if let Err(e) = self.ctx.decode(batch) {
            // The cache may be half-written: start from scratch next time.
            self.ctx.clear_kv_cache();
            self.cached.clear();
            return Err(engine_failure(format!("llama.cpp failed to evaluate the prompt: {e}")));
        }
        self.cached.extend_from_slice(tokens);
        Ok(batch.n_tokens() - 1)
    }
}

/// Top-k, top-p, min-p and temperature with a fixed seed, or greedy at temperature 0; both behind a
/// mild repetition penalty, which keeps small models out of loops. Top-k runs first so the penalty and
/// the later stages only look at a few dozen candidates instead of the whole vocabulary.
fn sampler(n_vocab: i32, temperature: Option<f32>) -> LlamaSampler {
    let temperature = temperature.unwrap_or(DEFAULT_TEMPERATURE);
    let penalty = LlamaSampler::penalties(n_vocab, 64, 1.1, 0.0, 0.0);
    if temperature <= 0.0 {
        return LlamaSampler::chain_simple([LlamaSampler::top_k(40), penalty, LlamaSampler::greedy()]);
    }
    LlamaSampler::chain_simple([
        LlamaSampler::top_k(40),
        penalty,
        LlamaSampler::top_p(0.95, 1),
        LlamaSampler::min_p(0.05, 1),
        LlamaSampler::temp(temperature),
        LlamaSampler::dist(SEED),
    ])
}
