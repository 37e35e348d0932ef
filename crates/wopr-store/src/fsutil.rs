//! File primitives: private directories, atomic 0600 writes, and advisory locks.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::{StoreError, StoreResult};

/// Creates `dir` (and parents) with mode 0700, and tightens it to 0700 if it exists.
pub fn create_private_dir(dir: &Path) -> StoreResult<()> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(StoreError::io("creating", dir))?;
    let perms = fs::metadata(dir).map_err(StoreError::io("reading", dir))?.permissions();
    if perms.mode() & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(StoreError::io("setting permissions of", dir))?;
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically: a 0600 temp file in the same directory, fsync, rename, fsync of
/// the directory. A crash at any point leaves either the old or the new content, never a mix; the temp
/// file a killed writer leaves is removed by the next successful write of the same file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> StoreResult<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!("{}{}-{}", temp_prefix(&name), std::process::id(), unique()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(StoreError::io("creating", &tmp))?;
        f.write_all(bytes).map_err(StoreError::io("writing", &tmp))?;
        f.sync_all().map_err(StoreError::io("syncing", &tmp))?;
        fs::rename(&tmp, path).map_err(StoreError::io("replacing", path))?;
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    match result {
        Ok(()) => remove_stale_temps(dir, &name),
        Err(_) => {
            let _ = fs::remove_file(&tmp);
        }
    }
    result
}

/// Temp files of `name` are `.<name>.tmp-<pid>-<n>`.
fn temp_prefix(name: &str) -> String {
    format!(".{name}.tmp-")
}

/// Removes the temp files of `name` that writers killed between creating and renaming them left behind
/// (they may hold a copy of a key). A file whose process still runs is that writer's to finish; without
/// `/proc` nothing can be told apart, so nothing is removed.
fn remove_stale_temps(dir: &Path, name: &str) {
    let proc = Path::new("/proc");
    let Ok(entries) = fs::read_dir(dir) else { return };
    if !proc.join("self").exists() {
        return;
    }
    let prefix = temp_prefix(name);
    for entry in entries.flatten() {
        let file = entry.file_name();
        let pid = file.to_str().and_then(|f| f.strip_prefix(&prefix)).and_then(|rest| rest.split('-').next());
        let Some(pid) = pid.and_then(|p| p.parse::<u32>().ok()) else { continue };
        if pid != std::process::id() && !proc.join(pid.to_string()).exists() {
            let _ = fs::remove_file(entry.path());
        }
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// An exclusive advisory lock on `<path>.lock`, held until dropped. Serialises read-modify-write cycles of
/// one document between processes.
pub(crate) struct FileLock {
    file: File,
}

impl FileLock {
    pub(crate) fn acquire(path: &Path) -> StoreResult<Self> {
        let lock_path = path.with_extension(match path.extension() {
            Some(e) => format!("{}.lock", e.to_string_lossy()),
            None => "lock".into(),
        });
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
            .map_err(StoreError::io("opening lock", &lock_path))?;
        file.lock().map_err(StoreError::io("locking", &lock_path))?;
        Ok(FileLock { file })
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// Reads a JSON document, or `T::default()` when the file does not exist.
pub(crate) fn read_json<T: serde::de::DeserializeOwned + Default>(path: &Path) -> StoreResult<T> {
    Ok(read_json_bytes(path)?.1)
}

/// The file's bytes (`None` if absent) and the document they hold.
fn read_json_bytes<T: serde::de::DeserializeOwned + Default>(
    path: &Path,
) -> StoreResult<(Option<Vec<u8>>, T)> {
    match fs::read(path) {
        Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Ok((Some(bytes), T::default())),
        Ok(bytes) => {
            let doc = serde_json::from_slice(&bytes)
                .map_err(|source| StoreError::Json { path: path.into(), source })?;
            Ok((Some(bytes), doc))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((None, T::default())),
        Err(e) => Err(StoreError::io("reading", path)(e)),
    }
}

/// A document as it is written: pretty, with a trailing newline.
fn json_bytes<T: serde::Serialize>(path: &Path, value: &T) -> StoreResult<Vec<u8>> {
    let mut bytes =
        serde_json::to_vec_pretty(value).map_err(|source| StoreError::Json { path: path.into(), source })?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Locks `path`, reads it, applies `f`, and writes the result back if `f` succeeded and changed the
/// document. An unchanged document is not rewritten (its inode and modification time stay), and an
/// absent one left at its default is not created: requests that change nothing cost no disk writes.
pub(crate) fn update_json<T, R>(path: &Path, f: impl FnOnce(&mut T) -> StoreResult<R>) -> StoreResult<R>
where
    T: serde::de::DeserializeOwned + serde::Serialize + Default,
{
    let _lock = FileLock::acquire(path)?;
    let (on_disk, mut doc) = read_json_bytes::<T>(path)?;
    let out = f(&mut doc)?;
    let bytes = json_bytes(path, &doc)?;
    let unchanged = match on_disk {
        Some(old) => old == bytes,
        None => bytes == json_bytes(path, &T::default())?,
    };
    if !unchanged {
        write_atomic(path, &bytes)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_is_0600_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name() != "x.json")
            .collect();
        assert!(leftovers.is_empty(), "temp files left behind");
    }

    #[test]
    fn a_write_removes_the_temp_files_of_dead_writers_only() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.json");
        // A pid that cannot exist (above the kernel's limit), and our own pid (a write in progress).
        let dead = dir.path().join(".x.json.tmp-4194305-0");
        let ours = dir.path().join(format!(".x.json.tmp-{}-999", std::process::id()));
        let other_doc = dir.path().join(".y.json.tmp-4194305-0");
        for f in [&dead, &ours, &other_doc] {
            fs::write(f, b"{\"half\":").unwrap();
        }
        write_atomic(&p, b"{}").unwrap();
        assert!(!dead.exists(), "a dead writer's temp file was kept");
        assert!(ours.exists() && other_doc.exists());
    }

    #[test]
    fn private_dir_is_tightened_to_0700() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("home");
        fs::create_dir(&p).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        create_private_dir(&p).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o700);
    }

    #[test]
    fn malformed_json_is_an_error_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.json");
        fs::write(&p, b"{not json").unwrap();
        let r: StoreResult<()> = update_json(&p, |_v: &mut serde_json::Value| Ok(()));
        assert!(matches!(r, Err(StoreError::Json { .. })));
        assert_eq!(fs::read(&p).unwrap(), b"{not json");
    }

    #[test]
    fn an_update_that_changes_nothing_leaves_the_file_alone() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("doc.json");
        update_json(&p, |doc: &mut serde_json::Value| {
            *doc = serde_json::json!({"grants": [{"peer": "bob"}]});
            Ok(())
        })
        .unwrap();
        let stamp = |p: &Path| {
            let m = fs::metadata(p).unwrap();
            (m.ino(), m.mtime(), m.mtime_nsec())
        };
        let before = stamp(&p);
        // Long enough for a rewrite to show in the modification time on any file system.
        std::thread::sleep(std::time::Duration::from_millis(20));
        update_json(&p, |_doc: &mut serde_json::Value| Ok(())).unwrap();
        update_json(&p, |doc: &mut serde_json::Value| {
            doc["grants"][0]["peer"] = "bob".into();
            Ok(())
        })
        .unwrap();
        assert_eq!(stamp(&p), before, "an unchanged document was rewritten");
        // A real change is still written.
        update_json(&p, |doc: &mut serde_json::Value| {
            doc["grants"][0]["peer"] = "carol".into();
            Ok(())
        })
        .unwrap();
        assert_ne!(stamp(&p), before);
        assert_eq!(read_json::<serde_json::Value>(&p).unwrap()["grants"][0]["peer"], "carol");
        // An absent document whose update changes nothing is not created.
        let absent = dir.path().join("absent.json");
        update_json(&absent, |_doc: &mut serde_json::Value| Ok(())).unwrap();
        assert!(!absent.exists(), "a no-op update created the file");
    }
}
