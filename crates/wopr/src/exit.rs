//! Exit codes (DESIGN section 5): 0 ok, 1 failure, 2 rejected, 3 invalid input, 4 rate limited,
//! 5 version mismatch, 6 peer offline, 7 unauthorized.

use std::fmt;

/// An error that carries its exit code.
#[derive(Debug)]
pub struct Exit {
    pub code: i32,
    pub message: String,
}

pub const INVALID: i32 = 3;

impl Exit {
    pub fn invalid(message: impl Into<String>) -> Self {
        Exit { code: INVALID, message: message.into() }
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

/// The exit code for an error: an explicit `Exit`, 3 for invalid input from the store, else 1.
pub fn code_of(err: &anyhow::Error) -> i32 {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<Exit>() {
            return e.code;
        }
        if let Some(e) = cause.downcast_ref::<wopr_store::StoreError>()
            && e.is_invalid_input()
        {
            return INVALID;
        }
        if let Some(wopr_identity::IdentityError::InvalidPublicKey(_)) =
            cause.downcast_ref::<wopr_identity::IdentityError>()
        {
            return INVALID;
        }
    }
    1
}
