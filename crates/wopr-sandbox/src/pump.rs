//! Feeding stdin and collecting capped stdout/stderr of a running sandbox, under the wall-clock limit.
//!
//! Shared by both backends: they hand over the pipes, a pidfd that turns readable when the process they
//! spawned exits, the cancellation descriptor, and a function that kills the whole sandbox.

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::command::TRUNCATION_MARKER;

/// How long to keep draining pipes after the process is gone or killed, before giving up on them.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// The parent's ends of a sandbox's standard streams.
pub(crate) struct Streams {
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

/// One stream, kept up to a cap.
#[derive(Debug, Default)]
pub(crate) struct Capped {
    pub bytes: Vec<u8>,
    pub truncated: bool,
}

impl Capped {
    /// Keeps what fits; returns true when something had to be dropped.
    fn push(&mut self, chunk: &[u8], cap: usize) -> bool {
        let room = cap.saturating_sub(self.bytes.len());
        self.bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if chunk.len() > room && !self.truncated {
            self.truncated = true;
            self.bytes.extend_from_slice(TRUNCATION_MARKER.as_bytes());
        }
        chunk.len() > room
    }
}

/// What came out of a run.
pub(crate) struct Collected {
    pub stdout: Capped,
    pub stderr: Capped,
    pub timed_out: bool,
    /// The run was cancelled (and the sandbox killed).
    pub cancelled: bool,
}

impl Collected {
    /// The run's [`crate::Output`], given how the process ended and how long it took.
    pub(crate) fn into_output(
        self,
        status: crate::ExitStatus,
        duration: std::time::Duration,
    ) -> crate::Output {
        crate::Output {
            status,
            stdout_truncated: self.stdout.truncated,
            stderr_truncated: self.stderr.truncated,
            stdout: self.stdout.bytes,
            stderr: self.stderr.bytes,
            timed_out: self.timed_out,
            duration,
        }
    }
}

/// When and how a run ends early.
pub(crate) struct Stops<'a> {
    /// The wall-clock limit.
    pub deadline: Instant,
    /// Bytes kept per stream.
    pub cap: usize,
    /// Turns readable when the run is cancelled.
    pub cancel: &'a OwnedFd,
}

/// Runs until the process exits and its pipes close, killing it at the deadline, when a stream passes
/// the cap, or when the run is cancelled.
pub(crate) fn pump(
    streams: Streams,
    stdin_data: &[u8],
    exited: &OwnedFd,
    stops: Stops<'_>,
    kill: &mut dyn FnMut(),
) -> std::io::Result<Collected> {
    let Stops { deadline, cap, cancel } = stops;
    let Streams { stdin, stdout, stderr } = streams;
    fcntl(&stdin, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
    let mut stdin = (!stdin_data.is_empty()).then_some(stdin);
    let mut outs: [Option<OwnedFd>; 2] = [Some(stdout), Some(stderr)];
    let mut collected = Collected {
        stdout: Capped::default(),
        stderr: Capped::default(),
        timed_out: false,
        cancelled: false,
    };
    let mut written = 0;
    let mut gone = false;
    let mut killed = false;
    let mut give_up: Option<Instant> = None;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if gone && outs.iter().all(Option::is_none) {
            break;
        }
        let now = Instant::now();
        if !killed && now >= deadline {
            kill();
            killed = true;
            collected.timed_out = true;
        }
        if (gone || killed) && give_up.is_none() {
            give_up = Some(now + DRAIN_GRACE);
        }
        if give_up.is_some_and(|t| now >= t) {
            break;
        }
        let wake = if killed { give_up.unwrap_or(now) } else { deadline };
        let timeout = wake.saturating_duration_since(now).as_millis().min(60_000) as i32;

        let mut fds = Vec::with_capacity(4);
        let mut roles = Vec::with_capacity(4);
        for (i, o) in outs.iter().enumerate() {
            if let Some(fd) = o {
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
                roles.push(i);
            }
        }
        if let Some(fd) = &stdin {
            fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLOUT));
            roles.push(2);
        }
        if !gone {
            fds.push(PollFd::new(exited.as_fd(), PollFlags::POLLIN));
            roles.push(3);
        }
        if !collected.cancelled {
            fds.push(PollFd::new(cancel.as_fd(), PollFlags::POLLIN));
            roles.push(4);
        }
        match poll(&mut fds, PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX)) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        let ready: Vec<(usize, PollFlags)> =
            fds.iter().zip(&roles).filter_map(|(f, &r)| f.revents().map(|ev| (r, ev))).collect();
        drop(fds);
        for (role, ev) in ready {
            if ev.is_empty() {
                continue;
            }
            match role {
                0 | 1 => {
                    let Some(fd) = &outs[role] else { continue };
                    match nix::unistd::read(fd, &mut buf) {
                        Ok(0) => outs[role] = None,
                        Ok(n) => {
                            let stream =
                                if role == 0 { &mut collected.stdout } else { &mut collected.stderr };
                            if stream.push(&buf[..n], cap) && !killed {
                                kill();
                                killed = true;
                            }
                        }
                        Err(Errno::EINTR | Errno::EAGAIN) => {}
                        Err(_) => outs[role] = None,
                    }
                }
                2 => {
                    let Some(fd) = &stdin else { continue };
                    match nix::unistd::write(fd, &stdin_data[written..]) {
                        Ok(n) => written += n,
                        Err(Errno::EINTR | Errno::EAGAIN) => {}
                        Err(_) => written = stdin_data.len(),
                    }
                    if written >= stdin_data.len() {
                        stdin = None;
                    }
                }
                3 => gone = true,
                _ => {
                    collected.cancelled = true;
                    if !killed {
                        kill();
                        killed = true;
                    }
                }
            }
        }
    }
    Ok(collected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_keeps_its_cap_and_gets_one_marker() {
        let mut c = Capped::default();
        assert!(!c.push(b"abc", 5));
        assert!(c.push(b"defg", 5));
        assert!(c.push(b"hij", 5));
        assert_eq!(c.bytes, [b"abcde".as_slice(), TRUNCATION_MARKER.as_bytes()].concat());
        assert!(c.truncated);
    }
}
