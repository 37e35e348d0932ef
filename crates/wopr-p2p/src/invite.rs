//! Making invites, and converting capabilities between the store and the wire.

use std::collections::BTreeSet;

use wopr_identity::{Identity, PublicId};
use wopr_proto::invite::{Capabilities, DEFAULT_INVITE_TTL_MS, InviteToken, NewInvite};
use wopr_store::{Capability, SessionName};

use crate::P2pError;

/// The wire capability bits of a set of store capabilities.
pub fn wire_capabilities<'a>(caps: impl IntoIterator<Item = &'a Capability>) -> Capabilities {
    caps.into_iter().fold(Capabilities::default(), |acc, c| {
        acc.union(match c {
            Capability::Message => Capabilities::MESSAGE,
            Capability::Inject => Capabilities::INJECT,
        })
    })
}

/// The store capabilities of wire capability bits.
pub fn store_capabilities(caps: Capabilities) -> BTreeSet<Capability> {
    let mut out = BTreeSet::new();
    if caps.contains(Capabilities::MESSAGE) {
        out.insert(Capability::Message);
    }
    if caps.contains(Capabilities::INJECT) {
        out.insert(Capability::Inject);
    }
    out
}

/// Signs an invite from `issuer` for `subject` (the only key that can claim it) to `sessions` with
/// `capabilities`, valid for `ttl_ms` (default 7 days), carrying `hints` (use [`crate::Node::addr_hints`])
/// so the subject can connect without discovery. Returns the `wop1://` string.
pub fn create_invite(
    issuer: &Identity,
    subject: &PublicId,
    sessions: &[String],
    capabilities: &[Capability],
    ttl_ms: Option<u64>,
    hints: Vec<String>,
) -> Result<String, P2pError> {
    if sessions.is_empty() {
        return Err(P2pError::Invalid("an invite needs at least one session".into()));
    }
    for s in sessions {
        SessionName::new(s)?;
    }
    let caps = wire_capabilities(capabilities);
    if caps.is_empty() {
        return Err(P2pError::Invalid("an invite needs a capability: message or inject".into()));
    }
    if *subject == issuer.public_id() {
        return Err(P2pError::Invalid("an invite for your own key makes no sense".into()));
    }
    let now = wopr_store::now_ms();
    let mut invite = NewInvite::new(*subject, sessions.to_vec(), caps, now, wopr_identity::random_bytes());
    invite.expires_ms = now.saturating_add(ttl_ms.unwrap_or(DEFAULT_INVITE_TTL_MS));
    invite.hints = hints;
    let token = invite.sign(issuer).map_err(|e| P2pError::Invalid(e.to_string()))?;
    Ok(token.to_uri())
}

/// Checks the sessions an issuer's `ClaimAccepted` names before they are stored in `peers.json` and
/// shown: each must be a valid session name and one the signed token offered. The issuer chose them, so
/// an error quotes them escaped (`{:?}`), never raw.
pub(crate) fn accepted_sessions(token: &InviteToken, sessions: Vec<String>) -> Result<Vec<String>, P2pError> {
    let protocol = |reason: String| P2pError::Protocol { peer: token.issuer.short(), reason };
    for s in &sessions {
        SessionName::new(s)
            .map_err(|_| protocol(format!("the claim was answered with an invalid session name {s:?}")))?;
        if !token.sessions.contains(s) {
            return Err(protocol(format!(
                "the claim was answered with session {s:?}, which the invite does not offer"
            )));
        }
    }
    Ok(sessions)
}

/// Parses a `wop1://` invite and checks its signature and expiry.
pub fn parse_invite(token: &str) -> Result<InviteToken, P2pError> {
    InviteToken::parse(token, wopr_store::now_ms()).map_err(|e| P2pError::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_convert_both_ways() {
        for caps in [
            vec![Capability::Message],
            vec![Capability::Inject],
            vec![Capability::Message, Capability::Inject],
        ] {
            let set: BTreeSet<_> = caps.iter().copied().collect();
            assert_eq!(store_capabilities(wire_capabilities(&caps)), set);
        }
    }

    #[test]
    fn invites_are_signed_bound_and_validated() {
        let alice = Identity::generate();
        let bob = Identity::generate().public_id();
        let uri = create_invite(
            &alice,
            &bob,
            &["dev".into()],
            &[Capability::Inject],
            None,
            vec!["127.0.0.1:1".into()],
        )
        .unwrap();
        let token = parse_invite(&uri).unwrap();
        assert_eq!((token.issuer, token.subject), (alice.public_id(), bob));
        assert_eq!(token.hints, ["127.0.0.1:1"]);
        let bad =
            |s: &[String], c: &[Capability]| create_invite(&alice, &bob, s, c, None, vec![]).unwrap_err();
        assert_eq!(bad(&[], &[Capability::Inject]).exit_code(), wopr_store::ExitCode::Invalid);
        assert_eq!(bad(&["../x".into()], &[Capability::Inject]).exit_code(), wopr_store::ExitCode::Invalid);
        assert_eq!(bad(&["dev".into()], &[]).exit_code(), wopr_store::ExitCode::Invalid);
        let expired =
            create_invite(&alice, &bob, &["dev".into()], &[Capability::Inject], Some(0), vec![]).unwrap();
        assert!(parse_invite(&expired).unwrap_err().to_string().contains("expired"));
    }

    #[test]
    fn an_issuers_answer_may_name_only_valid_sessions_the_invite_offered() {
        let alice = Identity::generate();
        let bob = Identity::generate().public_id();
        let hostile = "\x1b]0;x\x07";
        let offered = ["dev".to_string(), hostile.to_string()];
        let uri = create_invite_unchecked(&alice, &bob, &offered);
        let token = parse_invite(&uri).unwrap();
        assert_eq!(accepted_sessions(&token, vec!["dev".into()]).unwrap(), ["dev"]);
        for answer in [hostile, "../x", "other"] {
            let e = accepted_sessions(&token, vec!["dev".into(), answer.into()]).unwrap_err();
            assert_eq!(e.exit_code(), wopr_store::ExitCode::Invalid);
            assert!(!e.to_string().contains('\x1b'), "{e}");
        }
    }

    /// A token as a hostile issuer could sign it, with session names `create_invite` would refuse.
    fn create_invite_unchecked(issuer: &Identity, subject: &PublicId, sessions: &[String]) -> String {
        let now = wopr_store::now_ms();
        let invite = NewInvite::new(
            *subject,
            sessions.to_vec(),
            Capabilities::MESSAGE,
            now,
            wopr_identity::random_bytes(),
        );
        invite.sign(issuer).unwrap().to_uri()
    }
}
