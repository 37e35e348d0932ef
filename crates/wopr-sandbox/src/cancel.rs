//! Stopping runs from another thread. A cancelled run kills its whole sandbox at once (the native
//! backend's pid namespace, the Docker container) and returns [`crate::SandboxError::Cancelled`]; a run
//! still waiting for a slot gives up at once.
//!
//! An async caller keeps a [`CancelOnDrop`] in its future while the blocking run goes on elsewhere: when
//! the future is dropped (a cancelled turn, a peer that went away or was revoked), so is the guard.

use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, PoisonError};

/// A cancellation handle shared by a caller and the runs it started. Clones share one state.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<Mutex<State>>);

#[derive(Debug, Default)]
struct State {
    cancelled: bool,
    /// A pipe whose read end runs poll; closing the write end wakes them all (`None` until first asked).
    pipe: Option<(Arc<OwnedFd>, OwnedFd)>,
}

impl Cancel {
    /// A handle that has not fired.
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Stops every run using this handle, now and later.
    pub fn cancel(&self) {
        let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        state.cancelled = true;
        // Dropping the write end makes the read end readable (end of file) for every poller.
        if let Some((_, write)) = state.pipe.take() {
            drop(write);
        }
        drop(state);
        crate::limit::wake_waiters();
    }

    /// Whether [`Cancel::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).cancelled
    }

    /// A guard that cancels when dropped.
    pub fn on_drop(&self) -> CancelOnDrop {
        CancelOnDrop(self.clone())
    }

    /// A descriptor that turns readable once cancelled, or `None` if it already is.
    pub(crate) fn watch(&self) -> std::io::Result<Option<Arc<OwnedFd>>> {
        let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if state.cancelled {
            return Ok(None);
        }
        if state.pipe.is_none() {
            let (read, write) = crate::sys::pipe()?;
            state.pipe = Some((Arc::new(read), write));
        }
        Ok(state.pipe.as_ref().map(|(read, _)| read.clone()))
    }
}

/// Cancels its [`Cancel`] when dropped.
#[derive(Debug)]
#[must_use = "dropping the guard cancels at once"]
pub struct CancelOnDrop(Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

    use super::*;

    fn readable(fd: &OwnedFd) -> bool {
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        poll(&mut fds, PollTimeout::ZERO).unwrap() == 1
    }

    #[test]
    fn dropping_the_guard_wakes_every_watcher_and_later_runs_see_it_at_once() {
        let cancel = Cancel::new();
        let (a, b) = (cancel.watch().unwrap().unwrap(), cancel.clone().watch().unwrap().unwrap());
        assert!(!readable(&a) && !cancel.is_cancelled());
        drop(cancel.on_drop());
        assert!(readable(&a) && readable(&b) && cancel.is_cancelled());
        assert!(cancel.watch().unwrap().is_none());
    }
}
