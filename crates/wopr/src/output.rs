//! Printing: JSON for scripts, short human text otherwise, errors with their causes.

use std::io::{IsTerminal, Write};

/// Prints `value` as pretty JSON on stdout.
pub fn json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// `wopr: <error>` and its causes on stderr (nothing for an error without words, such as a sandboxed
/// command's own exit code passed on). Errors can carry a peer's words (a refusal's message, a session
/// name), so the text goes through [`printable`].
pub fn print_error(err: &anyhow::Error) {
    let mut msg = format!("{err}");
    if msg.is_empty() {
        return;
    }
    for cause in err.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg.push_str(&format!(": {c}"));
        }
    }
    let prefix = if std::io::stderr().is_terminal() { "\x1b[31mwopr:\x1b[0m" } else { "wopr:" };
    eprintln!("{prefix} {}", printable(&msg));
}

/// A spinner with `message` on stderr while long work runs, if stderr is a terminal.
pub fn spinner(message: impl Into<String>) -> Option<indicatif::ProgressBar> {
    std::io::stderr().is_terminal().then(|| {
        let s = indicatif::ProgressBar::new_spinner();
        s.set_message(message.into());
        s.enable_steady_tick(std::time::Duration::from_millis(100));
        s
    })
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM` UTC.
pub fn time(ms: u64) -> String {
    let secs = (ms / 1000) as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}", rem / 3600, (rem % 3600) / 60)
}

// Howard Hinnant's days-to-civil algorithm (public domain arithmetic).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Text from a model or a peer made safe for a terminal: control characters other than newline and tab
/// (escape sequences could rewrite the screen or the window title) become U+FFFD.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if text.chars().any(is_unsafe) {
        text.chars().map(|c| if is_unsafe(c) { '\u{FFFD}' } else { c }).collect::<String>().into()
    } else {
        text.into()
    }
}

fn is_unsafe(c: char) -> bool {
    c.is_control() && c != '\n' && c != '\t'
}

/// Reads the argument, or all of standard input when it is `-`.
pub fn arg_or_stdin(value: &str, what: &str) -> anyhow::Result<String> {
    if value != "-" {
        return Ok(value.to_string());
    }
    let mut s = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
        .map_err(|e| anyhow::anyhow!("reading the {what} from standard input: {e}"))?;
    let trimmed = s.trim_end_matches(['\n', '\r']).to_string();
    if trimmed.trim().is_empty() {
        return Err(crate::exit::Exit::invalid(format!("the {what} from standard input is empty")).into());
    }
    Ok(trimmed)
}

#[cfg(test)]
mod tests {
    #[test]
    fn terminal_escapes_from_peers_are_neutralised() {
        assert_eq!(super::printable("plain\ttext\n"), "plain\ttext\n");
        assert_eq!(
            super::printable("\x1b]0;pwned\x07red\x1b[31m"),
            "\u{FFFD}]0;pwned\u{FFFD}red\u{FFFD}[31m"
        );
        assert_eq!(super::printable("a\rb\x08"), "a\u{FFFD}b\u{FFFD}");
    }

    #[test]
    fn formats_utc_time() {
        assert_eq!(super::time(0), "1970-01-01 00:00");
        assert_eq!(super::time(1_700_000_000_000), "2023-11-14 22:13");
    }
}
