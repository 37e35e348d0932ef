//! Reading and writing `identity.json` (0600, atomic).

use std::path::Path;

use wopr_identity::{Identity, IdentityFile, RotationRecord};

use crate::{StoreError, StoreResult, write_atomic};

/// An identity as loaded from disk, with its rotation history.
#[derive(Debug)]
pub struct Loaded {
    /// The current keys.
    pub identity: Identity,
    /// Past rotations, oldest first.
    pub rotations: Vec<RotationRecord>,
}

pub(crate) fn load(path: &Path) -> StoreResult<Option<Loaded>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => zeroize::Zeroizing::new(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::io("reading", path)(e)),
    };
    let file: IdentityFile =
        serde_json::from_slice(&bytes).map_err(|source| StoreError::Json { path: path.into(), source })?;
    let identity = file.to_identity().map_err(|source| StoreError::Identity { path: path.into(), source })?;
    let rotations = file.rotations.clone();
    Ok(Some(Loaded { identity, rotations }))
}

pub(crate) fn save(path: &Path, id: &Identity, rotations: Vec<RotationRecord>) -> StoreResult<()> {
    let file = id.to_file(rotations);
    let mut bytes = zeroize::Zeroizing::new(
        serde_json::to_vec_pretty(&file).map_err(|source| StoreError::Json { path: path.into(), source })?,
    );
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}
