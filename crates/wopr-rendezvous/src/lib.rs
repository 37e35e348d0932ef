//! Topic rendezvous on the BitTorrent mainline DHT.
//!
//! A node that knows a topic's name finds a few recent members of that topic (their WOPR keys, which are
//! also their iroh endpoint ids, and address hints) with no WOPR bootstrap node at all: only the DHT.
//! The name itself is never published. From the name and the current minute every member derives the
//! same BEP44 signing key, encryption key and salts ([`keys`]); members write small records, each signed
//! by the member's own WOPR identity ([`entry`]), into a few encrypted values under that key ([`value`]);
//! a joiner derives the same keys, reads the current and previous minute, and keeps only the entries
//! whose member signature verifies and that are recent.
//!
//! [`keys`], [`entry`] and [`value`] are sans-IO (no sockets, clocks or RNG: the caller passes `now_ms`
//! and nonces). `Rendezvous` (feature `dht`, on by default) is the thin shell that talks to the DHT. `docs/PROTOCOL.md`, section
//! "Topic rendezvous on the mainline DHT", specifies the bytes.
//!
//! What this does not give: secrecy from someone else who knows the name (they derive the same keys, so
//! they can read the members and overwrite values), and any trust in a member beyond "this key signed
//! that it was in the topic recently". The entries are address hints for the gossip layer; whatever a
//! member wrote is a non-owner source.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod entry;
mod error;
pub mod keys;
#[cfg(feature = "dht")]
mod rendezvous;
pub mod value;

pub use entry::{Member, MemberEntry, select_hints};
pub use error::{EntryRejected, RecordError, RendezvousError};
pub use keys::{SlotKeys, TopicKeys, slot_of};
#[cfg(feature = "dht")]
pub use rendezvous::{Announced, LookupReport, MAX_ATTEMPTS, MAX_VERSIONS, Rendezvous};

/// How long one time slot lasts: each minute has its own keys.
pub const SLOT_MS: u64 = 60_000;

/// Values per slot (each under its own salt), so more members fit than one 1,000-byte value holds.
pub const BUCKETS: usize = 4;

/// An entry older than this is stale: a live member re-announces every [`REFRESH_INTERVAL_MS`].
pub const MEMBER_TTL_MS: u64 = 2 * SLOT_MS;

/// How often a member should call `Rendezvous::announce` to stay visible: twice a slot, so a joiner
/// reading the current and previous slot always finds an entry younger than [`MEMBER_TTL_MS`].
pub const REFRESH_INTERVAL_MS: u64 = SLOT_MS / 2;
