//! The embedded llama.cpp provider on the real default model.
//!
//! `WOPR_TEST_MODEL` must name the SmolLM2-135M-Instruct Q4_1 GGUF; `scripts/test` downloads it and sets
//! the variable. Without it these tests fail rather than pass vacuously.

use std::path::PathBuf;

use futures::StreamExt;
use wopr_providers::{
    ChatMessage, ChatRequest, ErrorKind, Local, Provider, ProviderError, ProviderName, Settings, StopReason,
    StreamEvent, Usage, detect,
};

const THREADS: u32 = 2;
/// A prompt that SmolLM2 answers at length with greedy decoding (it runs into `max_tokens`).
const LONG_STORY: &str = "Write a very long story about a dragon. Make it at least 3000 words.";

fn model_path() -> PathBuf {
    match std::env::var_os("WOPR_TEST_MODEL") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => panic!(
            "WOPR_TEST_MODEL is not set: these tests need the SmolLM2-135M-Instruct GGUF. \
             Run `scripts/test`, which downloads the model and sets WOPR_TEST_MODEL."
        ),
    }
}

fn local() -> Local {
    Local::new(model_path(), THREADS, None)
}

fn ask(question: &str, max_tokens: u32) -> ChatRequest {
    ChatRequest {
        system: "You are a helpful assistant. Answer briefly.".into(),
        messages: vec![ChatMessage::user(question)],
        max_tokens,
        temperature: Some(0.0),
        ..Default::default()
    }
}

async fn events(provider: &dyn Provider, request: ChatRequest) -> Vec<Result<StreamEvent, ProviderError>> {
    provider.stream(request).collect().await
}

fn ok_events(all: Vec<Result<StreamEvent, ProviderError>>) -> Vec<StreamEvent> {
    all.into_iter().map(|e| e.unwrap_or_else(|err| panic!("unexpected error: {err}"))).collect()
}

fn text(events: &[StreamEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::TextDelta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

fn single_error(all: Vec<Result<StreamEvent, ProviderError>>) -> ProviderError {
    match &all[..] {
        [Err(error)] => error.clone(),
        other => panic!("expected exactly one error, got {other:?}"),
    }
}

/// The last two events, which must be Usage then Done.
fn usage_and_stop(events: &[StreamEvent]) -> (Usage, StopReason) {
    match events {
        [.., StreamEvent::Usage { usage }, StreamEvent::Done { stop_reason }] => (*usage, *stop_reason),
        other => panic!("stream must end with Usage then Done, got {other:?}"),
    }
}

#[tokio::test]
async fn an_answer_streams_as_several_deltas_then_usage_then_done() {
    let all = ok_events(events(&local(), ask("What is the capital of France?", 48)).await);
    let deltas = all.iter().filter(|e| matches!(e, StreamEvent::TextDelta { .. })).count();
    assert!(deltas >= 2, "expected the answer in several pieces, got {all:?}");
    let answer = text(&all);
    assert!(!answer.trim().is_empty());
    let (usage, stop) = usage_and_stop(&all);
    assert!(matches!(stop, StopReason::EndTurn | StopReason::MaxTokens));
    assert!(usage.input_tokens > 10, "{usage:?}");
    assert!(usage.output_tokens >= deltas as u64, "{usage:?} for {deltas} deltas");
}

#[tokio::test]
async fn max_tokens_is_honoured() {
    let all = ok_events(events(&local(), ask("Write a long story about a dragon and a knight.", 3)).await);
    let (usage, stop) = usage_and_stop(&all);
    assert_eq!(stop, StopReason::MaxTokens);
    assert_eq!(usage.output_tokens, 3);
}

#[tokio::test]
async fn the_same_request_gives_the_same_greedy_answer_with_the_cached_prompt() {
    let provider = local();
    let request = ask("Name three colours.", 24);
    let first = text(&ok_events(events(&provider, request.clone()).await));
    let second = text(&ok_events(events(&provider, request).await));
    assert!(!first.is_empty());
    assert_eq!(first, second);
}

#[tokio::test]
async fn a_prompt_larger_than_the_context_is_context_too_long() {
    let huge = "apple banana cherry ".repeat(3000);
    let error = single_error(events(&local(), ask(&huge, 8)).await);
    assert_eq!(error.kind, ErrorKind::ContextTooLong, "{error}");
    assert!(error.message.contains("context window"), "{error}");
}

#[tokio::test]
async fn dropping_the_stream_stops_generation() {
    let stops = StopEvents::install();
    // A path of its own gives this test its own engine worker, with no other test's calls on it.
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("own-worker.gguf");
    std::os::unix::fs::symlink(model_path(), &link).unwrap();
    let provider = Local::new(link, THREADS, None);

    let mut stream = provider.stream(ask(LONG_STORY, 4000));
    let first = stream.next().await.expect("an event").expect("no error");
    assert!(matches!(first, StreamEvent::TextDelta { .. }), "{first:?}");
    drop(stream);
    // Calls to one model run one at a time, so once this one is answered the abandoned one has ended;
    // it must have ended by noticing the dropped stream, a few tokens in, not by running out of budget.
    usage_and_stop(&ok_events(events(&provider, ask("Say hi.", 4)).await));
    let generated = stops.taken();
    assert_eq!(generated.len(), 1, "expected exactly one stopped generation, got {generated:?}");
    assert!(generated[0] < 64, "generation went on for {} tokens after the stream was dropped", generated[0]);
}

/// Captures the engine's "generation stopped" events (with their token counts) from every thread.
#[derive(Clone, Default)]
struct StopEvents(std::sync::Arc<std::sync::Mutex<Vec<u64>>>);

impl StopEvents {
    fn install() -> Self {
        use tracing_subscriber::layer::SubscriberExt;
        let stops = StopEvents::default();
        let subscriber = tracing_subscriber::registry().with(stops.clone());
        tracing::subscriber::set_global_default(subscriber).expect("no other subscriber in this test");
        stops
    }

    fn taken(&self) -> Vec<u64> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for StopEvents {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Generated(Option<u64>);
        impl tracing::field::Visit for Generated {
            fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
                if field.name() == "generated" {
                    self.0 = Some(value);
                }
            }
            fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
        }
        let mut generated = Generated(None);
        event.record(&mut generated);
        if let Some(n) = generated.0 {
            self.0.lock().unwrap().push(n);
        }
    }
}

#[tokio::test]
async fn a_missing_model_file_says_to_pull_the_model() {
    let path = PathBuf::from("/nonexistent/wopr-test/model.gguf");
    let error = single_error(events(&Local::new(path, THREADS, None), ask("hi", 4)).await);
    assert_eq!(error.kind, ErrorKind::NotConfigured);
    assert!(error.message.contains("/nonexistent/wopr-test/model.gguf"), "{error}");
    assert!(error.message.contains("wopr model pull"), "{error}");
}

#[tokio::test]
async fn a_garbage_file_is_rejected_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in
        [("text.gguf", &b"this is not a model"[..]), ("truncated.gguf", &b"GGUF\x03\0\0\0garbage"[..])]
    {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        let error = single_error(events(&Local::new(path.clone(), THREADS, None), ask("hi", 4)).await);
        assert_eq!(error.kind, ErrorKind::BadRequest, "{error}");
        assert!(error.message.contains(&path.display().to_string()), "{error}");
        assert!(error.message.contains("wopr model pull"), "{error}");
    }
}

#[test]
fn the_display_name_defaults_to_the_file_stem() {
    let provider = Local::new(PathBuf::from("/m/SmolLM2-135M-Instruct.Q4_1.gguf"), 1, None);
    assert_eq!(provider.model(), "SmolLM2-135M-Instruct.Q4_1");
    assert_eq!(provider.name(), "local");
    assert_eq!(Local::new(PathBuf::from("/m/x.gguf"), 1, Some("tiny".into())).model(), "tiny");
}

#[tokio::test]
async fn a_tool_call_the_model_opens_is_held_to_an_offered_tool_and_valid_json() {
    let list_dir = wopr_providers::ToolSpec {
        name: "list_dir".into(),
        description: "Lists a directory.".into(),
        parameters: serde_json::json!({"type": "object", "properties": {"path": {"type": "string"}}}),
    };
    let mut request = ask(TOOL_PROMPT, 96);
    request.tools = vec![list_dir];
    let all = ok_events(events(&local(), request).await);
    let calls: Vec<&wopr_providers::ToolCall> = all
        .iter()
        .filter_map(|e| match e {
            StreamEvent::ToolCall { call } => Some(call),
            _ => None,
        })
        .collect();
    assert_eq!(calls.len(), 1, "expected one tool call, got {all:?}");
    assert_eq!(calls[0].name, "list_dir");
    assert!(calls[0].arguments.is_object(), "{:?}", calls[0].arguments);
    assert_eq!(usage_and_stop(&all).1, StopReason::ToolUse);
}

/// A request SmolLM2 answers by starting a tool call (greedy decoding); what follows the tag is the
/// grammar's work.
const TOOL_PROMPT: &str = "List the files in the current directory. Start your answer with <tool_call>";

/// ggml is compiled for x86-64-v3 (AVX2 and friends; .cargo/config.toml), yet the program must run on
/// any x86-64 CPU, with only the local engine refusing, clearly. This test runs itself again under
/// qemu's user-mode emulation of a Westmere CPU (SSE4.2, no AVX), whose CPUID reports none of those
/// sets: there, detection lists the local provider as unavailable with the reason, and a call gets the
/// refusal rather than a crash. (qemu 7.2 executes AVX instructions even for a Westmere, so this shows
/// the check, not that nothing before it uses AVX: ggml's kernels run only after it.)
#[test]
#[cfg(target_arch = "x86_64")]
fn on_a_cpu_without_avx_the_local_engine_refuses_with_a_clear_error() {
    const EMULATED: &str = "WOPR_TEST_EMULATED_CPU";
    const FINISHED: &str = "the emulated run got to its end";
    const LACKS: &str = "this CPU lacks AVX, AVX2, FMA, F16C, BMI2, which the embedded model needs";
    if std::env::var_os(EMULATED).is_some() {
        let model = model_path().display().to_string();
        let settings = Settings::from_parts(
            [("WOPR_MODEL".to_string(), model)],
            serde_json::Value::Null,
            PathBuf::new(),
        );
        let listed =
            detect(&settings).into_iter().find(|a| a.name == ProviderName::Local).expect("local is listed");
        assert!(!listed.available, "{listed:?}");
        assert!(listed.detail.starts_with(LACKS), "{}", listed.detail);
        let error = single_error(futures::executor::block_on(events(&local(), ask("hi", 4))));
        assert_eq!(error.kind, ErrorKind::NotConfigured, "{error}");
        assert!(error.message.starts_with(LACKS), "{error}");
        println!("{FINISHED}");
        return;
    }
    test_support::ensure_packages(&[("qemu-x86_64", "qemu-user")]);
    let output = std::process::Command::new("qemu-x86_64")
        .args(["-cpu", "Westmere"])
        .arg(std::env::current_exe().expect("the test binary's path"))
        .args(["--exact", "on_a_cpu_without_avx_the_local_engine_refuses_with_a_clear_error"])
        .args(["--nocapture", "--test-threads", "1"])
        .env(EMULATED, "1")
        .output()
        .expect("cannot run qemu-x86_64");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains(FINISHED),
        "under qemu-x86_64 -cpu Westmere: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}
