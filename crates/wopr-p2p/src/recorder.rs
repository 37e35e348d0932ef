//! The audit log's writer: one thread owns a `wopr.db` connection and commits records in batches, so a
//! request never waits on SQLite on an async worker, and a burst of requests costs one commit instead of
//! one per request. A second thread copies the write-ahead log back into the database when it passes
//! [`WAL_CHECKPOINT_BYTES`], so the log stays small and its fsyncs never delay a commit.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use tokio::sync::oneshot;
use wopr_store::{AuditEntry, AuditLog};

/// Records waiting for the writer at most; past it a record is dropped (and counted), never waited for.
const QUEUE: usize = 1024;

/// Most records committed in one transaction.
const BATCH: usize = 256;

/// Size of the write-ahead log file past which the checkpoint thread copies it back. Twice the size
/// SQLite cuts the file back to after a checkpoint (`journal_size_limit`, 32 KiB, in `wopr-store`): were
/// it below, the file would never fall under it and every commit would ask for a checkpoint, whose fsyncs
/// would then compete with every request. A record's commit appends a few pages, so this is a checkpoint
/// every few records while the log stays under about 64 KiB.
const WAL_CHECKPOINT_BYTES: u64 = 64 * 1024;

/// Size past which the writer checkpoints itself, before its next commit: the checkpoint thread has
/// fallen behind, and the log must not grow without bound meanwhile.
const WAL_HARD_LIMIT: u64 = 4 * WAL_CHECKPOINT_BYTES;

struct Job {
    entry: AuditEntry,
    done: oneshot::Sender<()>,
}

/// A handle on the writer thread; the threads end when the last handle is dropped.
#[derive(Debug)]
pub(crate) struct Recorder {
    queue: SyncSender<Job>,
    dropped: Arc<AtomicU64>,
    /// Every record queued, for watchers (the daemon's event bus); nobody listening is fine.
    watchers: tokio::sync::broadcast::Sender<AuditEntry>,
}

impl Recorder {
    /// Starts the writer thread over `writer` and the checkpoint thread over `checkpointer` (two
    /// connections to the same `wopr.db`).
    pub(crate) fn start(writer: AuditLog, checkpointer: AuditLog) -> std::io::Result<Recorder> {
        if let Err(e) = writer.defer_checkpoints() {
            tracing::warn!(%e, "audit commits will checkpoint themselves");
        }
        let (queue, jobs) = sync_channel(QUEUE);
        // One pending request is enough: a checkpoint covers everything written before it starts.
        let (wake, wakes) = sync_channel::<()>(1);
        let dropped = Arc::new(AtomicU64::new(0));
        let counter = dropped.clone();
        std::thread::Builder::new()
            .name("wopr-audit-checkpoint".into())
            .spawn(move || checkpoint_loop(&checkpointer, &wakes))?;
        std::thread::Builder::new()
            .name("wopr-audit".into())
            .spawn(move || write_loop(&writer, &jobs, &counter, &wake))?;
        Ok(Recorder { queue, dropped, watchers: tokio::sync::broadcast::channel(256).0 })
    }

    /// Records from now on, as they are queued.
    pub(crate) fn watch(&self) -> tokio::sync::broadcast::Receiver<AuditEntry> {
        self.watchers.subscribe()
    }

    /// Queues `entry`. The returned future completes once the record is committed (or failed to be, which
    /// the writer logs), so a caller that awaits it before answering answers only what is on record.
    pub(crate) fn record(&self, entry: AuditEntry) -> impl Future<Output = ()> + Send + 'static {
        let (done, committed) = oneshot::channel();
        if self.watchers.receiver_count() > 0 {
            let _ = self.watchers.send(entry.clone());
        }
        match self.queue.try_send(Job { entry, done }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Disconnected(_)) => tracing::warn!("the audit writer has stopped"),
        }
        async move {
            // A dropped job drops its sender, which ends the wait as well.
            let _ = committed.await;
        }
    }
}

fn write_loop(log: &AuditLog, jobs: &Receiver<Job>, dropped: &AtomicU64, checkpoint: &SyncSender<()>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < BATCH
            && let Ok(job) = jobs.try_recv()
        {
            batch.push(job);
        }
        let (entries, waiting): (Vec<AuditEntry>, Vec<oneshot::Sender<()>>) =
            batch.into_iter().map(|j| (j.entry, j.done)).unzip();
        if let Err(err) = log.record_all(&entries) {
            tracing::warn!(%err, records = entries.len(), "could not write the audit log");
        }
        for done in waiting {
            let _ = done.send(());
        }
        let wal = log.wal_len();
        if wal > WAL_HARD_LIMIT {
            if let Err(e) = log.checkpoint() {
                tracing::debug!(%e, "audit log checkpoint");
            }
        } else if wal > WAL_CHECKPOINT_BYTES {
            let _ = checkpoint.try_send(());
        }
        let lost = dropped.swap(0, Ordering::Relaxed);
        if lost > 0 {
            tracing::warn!(lost, "audit records dropped: requests arrived faster than the log is written");
        }
    }
}

fn checkpoint_loop(log: &AuditLog, wakes: &Receiver<()>) {
    while wakes.recv().is_ok() {
        if let Err(e) = log.checkpoint() {
            tracing::debug!(%e, "audit log checkpoint");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_are_committed_when_their_futures_complete() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("wopr.db");
        let open = || AuditLog::open(&path).unwrap();
        let recorder = Recorder::start(open(), open()).unwrap();
        let peer = wopr_identity::Identity::generate().public_id();
        for round in 0..20u64 {
            let waits: Vec<_> = (0..10)
                .map(|i| {
                    let e = AuditEntry::new(round * 10 + i, &peer, "inject", wopr_store::Decision::Refused);
                    recorder.record(e)
                })
                .collect();
            for w in waits {
                w.await;
            }
        }
        assert_eq!(open().list(None, None).unwrap().len(), 200);
        drop(recorder);
    }
}
