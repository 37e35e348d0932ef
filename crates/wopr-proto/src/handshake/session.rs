//! What a completed handshake yields: the transcript hash and the key schedule.
//!
//! ```text
//! transcript_hash = SHA-256("wopr/v3" 0x00 "transcript" 0x00 || u32(len hello) || hello || u32(len ack) || ack)
//! prk             = HKDF-Extract(salt = transcript_hash, ikm = X25519(eph_i, eph_r))
//! key(i2r)        = HKDF-Expand(prk, "wopr/v3 i2r", 32)          connection, initiator -> responder
//! key(r2i)        = HKDF-Expand(prk, "wopr/v3 r2i", 32)          connection, responder -> initiator
//! key(i2r, s)     = HKDF-Expand(prk, "wopr/v3 i2r" || u64(s), 32) QUIC stream s, and likewise r2i
//! ```

use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use wopr_identity::{PublicId, domain_bytes};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, Zeroizing};

use super::{HandshakeError, Hello, HelloAck};
use crate::channel::{ChannelError, Direction, OpeningKey, SealingKey};
use crate::codec::{Encode, Writer};

/// Which end of the handshake this session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Sent the Hello.
    Initiator,
    /// Sent the HelloAck.
    Responder,
}

/// Hash of the complete handshake (both messages with their signatures). It salts the key schedule and
/// can serve as a session identifier.
pub fn transcript_hash(hello: &Hello, ack: &HelloAck) -> [u8; 32] {
    let mut w = Writer::new();
    w.bytes(&hello.to_bytes()).bytes(&ack.to_bytes());
    Sha256::digest(domain_bytes("transcript", w.as_bytes())).into()
}

/// The HKDF pseudorandom key of a session, from which every traffic key is expanded. Zeroized on drop.
pub struct SessionKeys {
    prk: Zeroizing<[u8; 32]>,
}

/// Runs HKDF-Extract with the transcript hash as salt over the X25519 shared secret.
pub fn derive_keys(shared_secret: &[u8; 32], transcript_hash: &[u8; 32]) -> SessionKeys {
    let (mut out, _) = Hkdf::<Sha256>::extract(Some(transcript_hash), shared_secret);
    let mut prk = Zeroizing::new([0u8; 32]);
    prk.copy_from_slice(&out);
    out.as_mut_slice().zeroize();
    SessionKeys { prk }
}

impl SessionKeys {
    /// HKDF-Expand of 32 bytes for `info`.
    pub fn expand(&self, info: &[u8]) -> Zeroizing<[u8; 32]> {
        let mut okm = Zeroizing::new([0u8; 32]);
        // Invariants, not input checks: a 32-byte PRK is SHA-256's output size, and 32 bytes of output is
        // far below HKDF's 8160-byte limit.
        Hkdf::<Sha256>::from_prk(&*self.prk)
            .expect("PRK is 32 bytes")
            .expand(info, &mut *okm)
            .expect("32-byte HKDF output is within limits");
        okm
    }

    /// The connection key of `direction` (info = the direction label).
    pub fn connection_key(&self, direction: Direction) -> Zeroizing<[u8; 32]> {
        self.expand(direction.label())
    }

    /// The key of `direction` on QUIC stream `stream_id` (info = label followed by the id).
    pub fn stream_key(&self, direction: Direction, stream_id: u64) -> Zeroizing<[u8; 32]> {
        self.expand(&direction.stream_label(stream_id))
    }
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeys(<redacted>)")
    }
}

/// An authenticated, keyed connection: who the peer is, which version, and the keys to talk.
pub struct Session {
    role: Role,
    version: u16,
    remote: PublicId,
    transcript_hash: [u8; 32],
    keys: SessionKeys,
    connection_taken: bool,
    // Highest stream id handed out per QUIC stream type (id mod 4), so no stream key is derived twice.
    last_stream: [Option<u64>; 4],
}

impl Session {
    pub(super) fn establish(
        role: Role,
        version: u16,
        remote: PublicId,
        ephemeral: StaticSecret,
        hello: &Hello,
        ack: &HelloAck,
    ) -> Result<Session, HandshakeError> {
        let peer_ephemeral = match role {
            Role::Initiator => ack.ephemeral,
            Role::Responder => hello.ephemeral,
        };
        let shared = ephemeral.diffie_hellman(&PublicKey::from(peer_ephemeral));
        // Forward secrecy: the ephemeral secret is gone (zeroized) as soon as the shared secret exists.
        drop(ephemeral);
        if !shared.was_contributory() {
            return Err(HandshakeError::WeakEphemeral);
        }
        let transcript_hash = transcript_hash(hello, ack);
        let keys = derive_keys(shared.as_bytes(), &transcript_hash);
        Ok(Session {
            role,
            version,
            remote,
            transcript_hash,
            keys,
            connection_taken: false,
            last_stream: [None; 4],
        })
    }

    /// Initiator or responder.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The negotiated protocol version (3).
    pub fn version(&self) -> u16 {
        self.version
    }

    /// The authenticated peer.
    pub fn remote(&self) -> PublicId {
        self.remote
    }

    /// The transcript hash (equal on both ends).
    pub fn transcript_hash(&self) -> &[u8; 32] {
        &self.transcript_hash
    }

    fn directions(&self) -> (Direction, Direction) {
        match self.role {
            Role::Initiator => (Direction::InitiatorToResponder, Direction::ResponderToInitiator),
            Role::Responder => (Direction::ResponderToInitiator, Direction::InitiatorToResponder),
        }
    }

    /// The keys for the stream the handshake ran on: a sealing key for our direction and an opening key for
    /// the peer's. Available once, since handing them out twice would reuse nonces.
    pub fn channel(&mut self) -> Result<(SealingKey, OpeningKey), ChannelError> {
        if std::mem::replace(&mut self.connection_taken, true) {
            return Err(ChannelError::KeysAlreadyTaken(u64::MAX));
        }
        let (out, inb) = self.directions();
        let seal = SealingKey::new(&self.keys.connection_key(out), out.label());
        let open = OpeningKey::new(&self.keys.connection_key(inb), inb.label());
        Ok((seal, open))
    }

    /// Keys for another QUIC stream of this connection, so each request stream has its own counters.
    /// `stream_id` is the QUIC stream id; ids of each stream type (`id % 4`) must be asked for in
    /// increasing order, which is the order QUIC opens and accepts them. A repeated id is refused.
    pub fn stream_channel(&mut self, stream_id: u64) -> Result<(SealingKey, OpeningKey), ChannelError> {
        let slot = &mut self.last_stream[(stream_id % 4) as usize];
        if slot.is_some_and(|last| stream_id <= last) {
            return Err(ChannelError::KeysAlreadyTaken(stream_id));
        }
        *slot = Some(stream_id);
        let (out, inb) = self.directions();
        let seal = SealingKey::new(&self.keys.stream_key(out, stream_id), &out.stream_label(stream_id));
        let open = OpeningKey::new(&self.keys.stream_key(inb, stream_id), &inb.stream_label(stream_id));
        Ok((seal, open))
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("role", &self.role)
            .field("version", &self.version)
            .field("remote", &self.remote)
            .finish_non_exhaustive()
    }
}
