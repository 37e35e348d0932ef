//! The HTTP API's credentials: the bearer token in `$WOPR_HOME/daemon-token` (0600, written
//! atomically, made at the first start) and the web UI's one-time login codes and session cookies.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wopr_store::{Home, StoreError, write_atomic};

/// The token file's name.
pub const TOKEN_FILE: &str = "daemon-token";
/// How long a `wopr ui` link works.
pub const LOGIN_CODE_TTL: Duration = Duration::from_secs(120);
/// How long a web UI session lasts.
pub const UI_SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Web UI sessions kept at once (the oldest goes first).
const MAX_UI_SESSIONS: usize = 64;

/// 32 random bytes, hex.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random source failed");
    hex::encode(bytes)
}

/// The token, made now if the file does not exist yet.
pub fn load_or_create(home: &Home) -> Result<String, StoreError> {
    let path = home.file(TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => Ok(t.trim().to_string()),
        _ => rotate(home),
    }
}

/// A new token, replacing the old one.
pub fn rotate(home: &Home) -> Result<String, StoreError> {
    let token = random_secret();
    write_atomic(&home.file(TOKEN_FILE), format!("{token}\n").as_bytes())?;
    Ok(token)
}

/// Compares two secrets in time that does not depend on where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The daemon's credentials in memory: the token (as in the file) and the web UI's logins.
pub struct Credentials {
    home: Home,
    token: std::sync::RwLock<String>,
    /// The web UI's logins.
    pub logins: UiLogins,
}

impl Credentials {
    /// The credentials of `home`, making the token file at the first start.
    pub fn load(home: &Home) -> Result<Self, StoreError> {
        let token = load_or_create(home)?;
        Ok(Credentials {
            home: home.clone(),
            token: std::sync::RwLock::new(token),
            logins: UiLogins::default(),
        })
    }

    /// The current token.
    pub fn token(&self) -> String {
        self.token.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// A new token (the file first); the old one, every web UI session and every unspent login code
    /// stop working.
    pub fn rotate(&self) -> Result<String, StoreError> {
        // The lock is held across the write, so two rotations leave the file and memory agreeing.
        let mut held = self.token.write().unwrap_or_else(|e| e.into_inner());
        let token = rotate(&self.home)?;
        *held = token.clone();
        drop(held);
        self.logins.clear();
        Ok(token)
    }
}

/// A web UI login: the cookie's id, and a second secret the page keeps in its own (port-scoped)
/// storage and sends as [`UI_KEY_HEADER`]. Cookies are not scoped by port, so another process on
/// 127.0.0.1 that the browser visits receives the cookie; it never sees the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UiSession {
    /// The cookie's value.
    pub cookie: String,
    /// The key the page sends with every request.
    pub key: String,
}

/// The header the web UI sends its session key in.
pub const UI_KEY_HEADER: &str = "x-wopr-ui-key";

/// One-time login codes and the cookie sessions they became (cookie id -> key, expiry).
#[derive(Default)]
pub struct UiLogins {
    codes: Mutex<HashMap<String, Instant>>,
    sessions: Mutex<HashMap<String, (String, Instant)>>,
}

impl UiLogins {
    /// A new one-time code, valid for [`LOGIN_CODE_TTL`].
    pub fn new_code(&self) -> String {
        let code = random_secret();
        let mut codes = self.codes.lock().unwrap_or_else(|e| e.into_inner());
        codes.retain(|_, until| *until > Instant::now());
        codes.insert(code.clone(), Instant::now() + LOGIN_CODE_TTL);
        code
    }

    /// Spends `code`: a new session if it was valid (a code works once).
    pub fn redeem(&self, code: &str) -> Option<UiSession> {
        let valid = {
            let mut codes = self.codes.lock().unwrap_or_else(|e| e.into_inner());
            let found =
                codes.iter().find(|(c, _)| same_secret(c, code)).map(|(c, until)| (c.clone(), *until));
            found.and_then(|(c, until)| codes.remove(&c).filter(|_| until > Instant::now()))
        };
        valid?;
        let session = UiSession { cookie: random_secret(), key: random_secret() };
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.retain(|_, (_, until)| *until > Instant::now());
        if sessions.len() >= MAX_UI_SESSIONS
            && let Some(oldest) = sessions.iter().min_by_key(|(_, (_, u))| *u).map(|(s, _)| s.clone())
        {
            sessions.remove(&oldest);
        }
        sessions.insert(session.cookie.clone(), (session.key.clone(), Instant::now() + UI_SESSION_TTL));
        Some(session)
    }

    /// Whether `cookie` is a live session whose key is `key`.
    pub fn is_session(&self, cookie: &str, key: &str) -> bool {
        let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions
            .iter()
            .any(|(c, (k, until))| *until > Instant::now() && same_secret(c, cookie) && same_secret(k, key))
    }

    /// Ends every session and every unspent code (the token was rotated).
    pub fn clear(&self) {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.codes.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_code_works_once() {
        let logins = UiLogins::default();
        let code = logins.new_code();
        let session = logins.redeem(&code).expect("a fresh code is valid");
        assert!(logins.is_session(&session.cookie, &session.key));
        assert!(!logins.is_session(&session.cookie, "0000"), "the cookie alone is not a session");
        assert!(logins.redeem(&code).is_none(), "a spent code must not work again");
        assert!(logins.redeem("0000").is_none());
        let unspent = logins.new_code();
        logins.clear();
        assert!(!logins.is_session(&session.cookie, &session.key));
        assert!(logins.redeem(&unspent).is_none(), "a rotation ends unspent codes too");
    }

    #[test]
    fn the_token_file_is_private_and_kept() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path().join("home"));
        home.ensure().unwrap();
        let t = load_or_create(&home).unwrap();
        assert_eq!(t.len(), 64);
        let mode = std::fs::metadata(home.file(TOKEN_FILE)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(load_or_create(&home).unwrap(), t);
        assert_ne!(rotate(&home).unwrap(), t);
        assert!(same_secret(&t, &t) && !same_secret(&t, "x"));
    }
}
