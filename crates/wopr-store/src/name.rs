//! Session names: what may become a file name under `sessions/`.

use std::fmt;

use crate::StoreError;

/// Longest session name, in characters.
pub const MAX_SESSION_NAME: usize = 128;

/// A validated session name: 1 to 128 of `A-Z a-z 0-9 . _ - : ( )`, not starting with `.`, no `..`.
/// So `friend:p2p:alice(abc123)` is fine and nothing can name a path outside `sessions/`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct SessionName(String);

impl SessionName {
    /// Validates `name`.
    pub fn new(name: &str) -> Result<Self, StoreError> {
        let refuse =
            |reason: &str| StoreError::InvalidName { name: name.to_string(), reason: reason.to_string() };
        if name.is_empty() {
            return Err(refuse("it is empty"));
        }
        if name.chars().count() > MAX_SESSION_NAME {
            return Err(refuse("it is longer than 128 characters"));
        }
        if let Some(c) = name.chars().find(|c| !is_allowed(*c)) {
            return Err(refuse(&format!("{c:?} is not allowed; use letters, digits and . _ - : ( )")));
        }
        if name.starts_with('.') {
            return Err(refuse("it may not start with '.'"));
        }
        if name.contains("..") {
            return Err(refuse("it may not contain '..'"));
        }
        Ok(SessionName(name.to_string()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '(' | ')')
}

impl fmt::Display for SessionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for SessionName {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SessionName::new(s)
    }
}

impl<'de> serde::Deserialize<'de> for SessionName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        SessionName::new(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Component, Path};

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn accepts_the_spec_examples() {
        for ok in ["mybot", "dev", "s1", "friend:p2p:alice(abc123)", "a.b_c-d", &"x".repeat(128)] {
            assert!(SessionName::new(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_escapes_and_junk() {
        for bad in [
            "",
            "../evil",
            "..",
            ".",
            ".hidden",
            "a/b",
            "a\\b",
            "a\0b",
            "a..b",
            "with space",
            "é",
            "semi;colon",
            "new\nline",
            &"x".repeat(129),
        ] {
            assert!(SessionName::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    proptest! {
        #[test]
        fn any_accepted_name_stays_inside_sessions_dir(name in "\\PC{0,140}") {
            if let Ok(n) = SessionName::new(&name) {
                let file = format!("{}.md", n.as_str());
                let p = Path::new(&file);
                let comps: Vec<_> = p.components().collect();
                prop_assert_eq!(comps.len(), 1);
                prop_assert!(matches!(comps[0], Component::Normal(_)));
                prop_assert!(n.as_str().chars().count() <= MAX_SESSION_NAME);
            }
        }

        #[test]
        fn every_name_from_the_allowed_alphabet_is_accepted(name in "[A-Za-z0-9_:()-][A-Za-z0-9_:().-]{0,127}") {
            prop_assume!(!name.contains(".."));
            prop_assert!(SessionName::new(&name).is_ok());
        }

        #[test]
        fn any_name_with_a_separator_is_refused(a in "[a-z]{0,10}", b in "[a-z]{0,10}", sep in prop::sample::select(vec!["/", "\\", "\0", ".."])) {
            let name = format!("{a}{sep}{b}");
            prop_assert!(SessionName::new(&name).is_err());
        }
    }
}
