//! Time to first token and tokens per second: the embedded `local` provider against `llama-server`
//! (through the `openai-compatible` provider) on the same GGUF, thread count, prompt and budget.
//!
//! Needs `WOPR_TEST_MODEL` (the GGUF) and `WOPR_LLAMA_SERVER` (the binary), as `scripts/test` sets them.
//! `WOPR_BENCH_THREADS` sets the thread count (default 2), `WOPR_BENCH_RUNS` the measured runs per
//! engine (default 3). Run with `cargo bench -j2 --bench local_vs_server`.
//!
//! Greedy decoding, 128 tokens; after a warm-up the engines take turns, and medians are reported. Both
//! keep the prompt's KV cache between runs, so time to first token is that of a repeated prompt. On a
//! machine shared with other work the figures swing widely from run to run: compare them on a quiet one.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::StreamExt;
use test_support::LlamaServer;
use wopr_providers::{
    ChatMessage, ChatRequest, Local, Provider, ProviderName, Settings, StreamEvent, resolve,
};

/// Measured runs per engine, unless `WOPR_BENCH_RUNS` says otherwise.
const RUNS: usize = 3;
const MAX_TOKENS: u32 = 128;
const TARGET_RATIO: f64 = 0.9;

fn main() {
    let model = env_path("WOPR_TEST_MODEL", "the GGUF model");
    let threads: u32 = env_number("WOPR_BENCH_THREADS").unwrap_or(2);
    let runs: usize = env_number("WOPR_BENCH_RUNS").filter(|&n| n > 0).unwrap_or(RUNS);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");

    let local = Local::new(model.clone(), threads, None);
    let server = LlamaServer::start_with_threads(threads);
    let settings = Settings::from_parts(
        [("OPENAI_COMPATIBLE_BASE_URL".to_string(), format!("{}/v1", server.base_url()))],
        serde_json::Value::Null,
        PathBuf::new(),
    );
    let remote =
        resolve(Some(ProviderName::OpenaiCompatible), None, &settings).expect("openai-compatible provider");
    let (local_pid, server_pid) = (std::process::id(), server.pid());
    // Warm up both (model load, prompt cache), then alternate, so load from other processes on the
    // machine hits both engines alike.
    let (local_runs, server_runs) = runtime.block_on(async {
        run(&local, local_pid).await;
        run(remote.as_ref(), server_pid).await;
        let (mut local_runs, mut server_runs) = (Vec::new(), Vec::new());
        for i in 1..=runs {
            let (l, r) = (run(&local, local_pid).await, run(remote.as_ref(), server_pid).await);
            eprintln!("run {i}: local {:.1} tokens/s, llama-server {:.1} tokens/s", l.rate(), r.rate());
            local_runs.push(l);
            server_runs.push(r);
        }
        (local_runs, server_runs)
    });
    drop(server);
    let (local_stats, server_stats) = (Stats::median(&local_runs), Stats::median(&server_runs));

    println!(
        "\nlocal vs llama-server: {} , {threads} threads, greedy, max_tokens {MAX_TOKENS}, median of {runs}",
        model.display()
    );
    println!("{:<14} {:>10} {:>12} {:>8} {:>14}", "engine", "TTFT ms", "tokens/s", "tokens", "CPU ms/token");
    for (name, s) in [("local", &local_stats), ("llama-server", &server_stats)] {
        let cpu = s.cpu_ms_per_token.map_or_else(|| "-".to_string(), |ms| format!("{ms:.1}"));
        println!(
            "{name:<14} {:>10.1} {:>12.1} {:>8} {cpu:>14}",
            s.ttft.as_secs_f64() * 1000.0,
            s.tokens_per_s,
            s.tokens
        );
    }
    let ratio = local_stats.tokens_per_s / server_stats.tokens_per_s;
    let ttft_ratio = local_stats.ttft.as_secs_f64() / server_stats.ttft.as_secs_f64();
    println!(
        "ratio local/server: tokens/s {ratio:.2} (target >= {TARGET_RATIO}: {}), TTFT {ttft_ratio:.2}",
        if ratio >= TARGET_RATIO { "met" } else { "NOT met" }
    );
}

/// Medians over the measured runs, and CPU time per token over all of them.
struct Stats {
    ttft: Duration,
    tokens_per_s: f64,
    tokens: u64,
    cpu_ms_per_token: Option<f64>,
}

impl Stats {
    fn median(runs: &[Run]) -> Self {
        let mid = runs.len() / 2;
        let mut ttfts: Vec<Duration> = runs.iter().map(|r| r.ttft).collect();
        ttfts.sort();
        let mut rates: Vec<f64> = runs.iter().map(Run::rate).collect();
        rates.sort_by(f64::total_cmp);
        let mut tokens: Vec<u64> = runs.iter().map(|r| r.tokens).collect();
        tokens.sort();
        let cpu: Option<Duration> = runs.iter().map(|r| r.cpu).sum();
        let all_tokens: u64 = runs.iter().map(|r| r.tokens).sum();
        let cpu_ms_per_token = cpu.map(|c| c.as_secs_f64() * 1000.0 / all_tokens.max(1) as f64);
        Stats { ttft: ttfts[mid], tokens_per_s: rates[mid], tokens: tokens[mid], cpu_ms_per_token }
    }
}

/// One call: time to the first text, then the decode rate between first and last text.
struct Run {
    ttft: Duration,
    tokens: u64,
    decode: Duration,
    /// CPU time the engine's process used for the call (Linux only).
    cpu: Option<Duration>,
}

impl Run {
    /// Tokens per second after the first one.
    fn rate(&self) -> f64 {
        self.tokens.saturating_sub(1) as f64 / self.decode.as_secs_f64()
    }
}

/// One call to `provider`, whose engine runs in process `pid`.
async fn run(provider: &dyn Provider, pid: u32) -> Run {
    let request = ChatRequest {
        system: "You are a helpful assistant.".into(),
        messages: vec![ChatMessage::user(
            "Write a detailed essay about the history of computing, from the abacus to the smartphone.",
        )],
        max_tokens: MAX_TOKENS,
        temperature: Some(0.0),
        ..Default::default()
    };
    let cpu_before = cpu_time(pid);
    let started = Instant::now();
    let mut stream = provider.stream(request);
    let (mut first, mut last, mut deltas, mut usage) = (None, None, 0u64, None);
    while let Some(event) = stream.next().await {
        match event.unwrap_or_else(|e| panic!("{} failed: {e}", provider.name())) {
            StreamEvent::TextDelta { .. } => {
                let now = Instant::now();
                first.get_or_insert(now);
                last = Some(now);
                deltas += 1;
            }
            StreamEvent::Usage { usage: u } => usage = Some(u.output_tokens),
            _ => {}
        }
    }
    let first = first.unwrap_or_else(|| panic!("{} produced no text", provider.name()));
    let last = last.unwrap_or(first);
    // Servers that do not report usage stream one token per delta.
    let tokens = usage.filter(|&n| n > 0).unwrap_or(deltas);
    let cpu = cpu_time(pid).zip(cpu_before).map(|(after, before)| after.saturating_sub(before));
    Run { ttft: first - started, tokens, decode: (last - first).max(Duration::from_micros(1)), cpu }
}

/// User and system CPU time of process `pid` so far, from `/proc/<pid>/stat` (in 10 ms ticks). Load
/// from other processes stretches wall-clock times but hardly this, so it compares engines fairly on a
/// busy machine.
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which ends with the last ')': utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

fn env_number<T: std::str::FromStr>(var: &str) -> Option<T> {
    std::env::var(var).ok().and_then(|v| v.parse().ok())
}

fn env_path(var: &str, what: &str) -> PathBuf {
    let path = std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("{var} is not set: it must name {what}; run the benchmark via `scripts/test`'s environment (it builds llama-server and fetches the model)"));
    assert!(path.is_file(), "{var}={} does not exist", path.display());
    path
}
