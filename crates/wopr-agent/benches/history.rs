//! History loading for one turn: the newest messages that fit the model's window plus the session's
//! trust (`wopr_agent::load_context`, exactly what `run_turn` reads), in a session of 100,000 messages,
//! against the same in sessions of 100 and 1,000 messages (1,000 is the row cap, so from there on the
//! work no longer grows with the session), and against reading every row (what turns did before).
//! Printed as ratios next to criterion's own figures; the target is under 50 ms for 100,000 messages.
//!
//! `cargo bench -p wopr-agent --bench history`. The window is a 200k-token model's (the largest the
//! providers report), so the turn reads its full row cap; one peer message early in each session makes
//! the trust query find a taint, as it would in a real shared session.

use std::cell::RefCell;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use wopr_agent::load_context;
use wopr_store::{History, Home, MessageStatus, Role, SessionName, Source};

const WINDOW_TOKENS: u32 = 200_000;
const SMALL: usize = 100;
const CAP: usize = 1_000;
const LARGE: usize = 100_000;

struct Session {
    _dir: tempfile::TempDir,
    history: History,
    name: SessionName,
}

/// A home whose session `s` holds `messages` stored messages of about 200 bytes, one of them a peer's.
fn session_of(messages: usize) -> Session {
    let dir = tempfile::tempdir().expect("temp dir");
    let home = Home::at(dir.path().join("wopr"));
    let name = SessionName::new("s").expect("name");
    home.sessions().create(&name, "You are terse.", None, None).expect("session");
    let history = home.history().expect("history");
    // Another session of the same size shares the table and its indexes, as in a real home.
    let other = SessionName::new("other").expect("name");
    let peer = Source::Peer(wopr_identity::Identity::generate().public_id());
    let text = "a line of conversation about nothing in particular, long enough to be typical. ".repeat(3);
    // One transaction, so filling 200,000 rows takes seconds rather than minutes.
    history
        .consistent(|h| {
            for i in 0..messages {
                let role = if i % 2 == 0 { Role::User } else { Role::Assistant };
                let source = if i == 10 { &peer } else { &Source::Owner };
                h.append(&name, role, &text, MessageStatus::Ok, source, None)?;
                h.append(&other, role, &text, MessageStatus::Ok, &Source::Owner, None)?;
            }
            Ok(())
        })
        .expect("filling the history");
    Session { _dir: dir, history, name }
}

/// Mean time per call, from criterion's own iterations.
fn measure(c: &mut Criterion, id: &str, mut f: impl FnMut()) -> Duration {
    let spent = RefCell::new((Duration::ZERO, 0u64));
    c.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                f();
            }
            let took = start.elapsed();
            let mut s = spent.borrow_mut();
            s.0 += took;
            s.1 += iters;
            took
        })
    });
    let (total, iters) = spent.into_inner();
    total / u32::try_from(iters.max(1)).unwrap_or(u32::MAX)
}

fn turn_load(s: &Session) -> usize {
    let context = load_context(&s.history, &s.name, "You are terse.", "next?", &Source::Owner, WINDOW_TOKENS)
        .expect("loading the context");
    assert!(context.trust.taint.is_some(), "the peer's message taints the session");
    black_box(context.history.len())
}

fn main() {
    let mut c = Criterion::default().configure_from_args().sample_size(20);
    let small = session_of(SMALL);
    let capped = session_of(CAP);
    let large = session_of(LARGE);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;

    let t_small = measure(&mut c, "turn history, 100 messages", || {
        turn_load(&small);
    });
    let t_capped = measure(&mut c, "turn history, 1,000 messages", || {
        turn_load(&capped);
    });
    let t_large = measure(&mut c, "turn history, 100,000 messages", || {
        turn_load(&large);
    });
    let t_all = measure(&mut c, "every row, 100,000 messages (before)", || {
        black_box(large.history.messages(&large.name, None).expect("all rows").len());
    });
    c.final_summary();

    let rows = turn_load(&large);
    println!();
    println!("history loading for a turn ({rows} rows read of {LARGE}, window {WINDOW_TOKENS} tokens):");
    println!("  100 messages       {:8.3} ms  (reference)", ms(t_small));
    println!(
        "  1,000 messages     {:8.3} ms  ({:.1}x the reference; the row cap is reached here)",
        ms(t_capped),
        t_capped.as_secs_f64() / t_small.as_secs_f64()
    );
    println!(
        "  100,000 messages   {:8.3} ms  ({:.1}x the reference, {:.2}x 1,000 messages; target < 50 ms: {})",
        ms(t_large),
        t_large.as_secs_f64() / t_small.as_secs_f64(),
        t_large.as_secs_f64() / t_capped.as_secs_f64(),
        if ms(t_large) < 50.0 { "met" } else { "MISSED" }
    );
    println!(
        "  every row (before) {:8.3} ms  ({:.1}x the turn's load)",
        ms(t_all),
        t_all.as_secs_f64() / t_large.as_secs_f64()
    );
}
