//! Errors of the record format (sans-IO) and of the DHT shell.

use thiserror::Error;
use wopr_proto::CodecError;

use crate::entry::{MAX_HINT_LEN, MAX_HINTS};
use crate::value::{MAX_ENTRIES, MAX_VALUE_BYTES};

/// Why a record could not be built or read.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RecordError {
    /// The topic name is empty or longer than discovery allows.
    #[error("a topic name must be 1 to {max} bytes", max = wopr_proto::discovery::MAX_TOPIC_NAME)]
    BadTopicName,
    /// More address hints than an entry carries.
    #[error("an entry carries at most {MAX_HINTS} address hints, not {count}")]
    TooManyHints {
        /// How many were given or found.
        count: usize,
    },
    /// An address hint is empty, longer than [`MAX_HINT_LEN`], or not printable ASCII.
    #[error("an address hint must be 1 to {MAX_HINT_LEN} printable ASCII characters without spaces")]
    BadHint,
    /// More entries than a value holds.
    #[error("a value holds at most {MAX_ENTRIES} entries, not {count}")]
    TooManyEntries {
        /// How many.
        count: usize,
    },
    /// The sealed value would be, or is, larger than a BEP44 value may be.
    #[error("the value takes {len} bytes; a DHT value holds at most {MAX_VALUE_BYTES}")]
    TooLarge {
        /// Its size.
        len: usize,
    },
    /// The value does not decrypt under this slot's key and salt: not ours, tampered with, or truncated.
    #[error("the value does not decrypt under this topic's key for this slot")]
    Unsealed,
    /// The decrypted bytes are not a list of entries.
    #[error("malformed rendezvous value: {0}")]
    Codec(#[from] CodecError),
}

/// Why one member entry was not trusted (the value holding it may still hold good ones).
#[derive(Debug, Error, PartialEq, Eq)]
pub enum EntryRejected {
    /// The member signature does not verify for the entry's key and this topic.
    #[error("the member signature does not verify for this key and topic")]
    BadSignature,
    /// The entry is older than [`crate::MEMBER_TTL_MS`].
    #[error("the entry is {age_ms} ms old, older than the rendezvous window")]
    Stale {
        /// Its age.
        age_ms: u64,
    },
    /// The entry is dated further ahead of this node's clock than the protocol's skew allows.
    #[error("the entry is dated {ahead_ms} ms ahead of this node's clock")]
    FromTheFuture {
        /// How far ahead.
        ahead_ms: u64,
    },
}

/// Why a rendezvous operation over the DHT failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RendezvousError {
    /// A configured DHT bootstrap node is not `host:port`, or its host does not resolve to IPv4.
    #[error(
        "DHT bootstrap node {node:?} is not a reachable host:port (IPv4): {reason}; fix discover.dht.bootstrap"
    )]
    BadBootstrap {
        /// The entry as configured.
        node: String,
        /// What was wrong.
        reason: String,
    },
    /// The configured bootstrap list is empty: the node would sit alone in a DHT of one.
    #[error("discover.dht.bootstrap is an empty list; leave it unset for the public DHT or name a node")]
    NoBootstrap,
    /// The UDP socket could not be opened.
    #[error("could not open the DHT socket: {0}")]
    Socket(#[source] std::io::Error),
    /// No bootstrap node answered, so the node knows no other DHT node.
    #[error("no DHT node answered (bootstrap: {bootstrap}); check the network or discover.dht.bootstrap")]
    Unreachable {
        /// The bootstrap nodes tried, or "public defaults".
        bootstrap: String,
    },
    /// The record could not be built (bad topic name or hints).
    #[error(transparent)]
    Record(#[from] RecordError),
    /// The DHT refused or dropped the write.
    #[error("the DHT did not store the rendezvous value: {0}")]
    Put(String),
    /// Other writers kept replacing the value between our read and write.
    #[error("gave up after {attempts} attempts: other members kept rewriting the value at the same time")]
    Contended {
        /// Attempts made.
        attempts: usize,
    },
    /// A blocking helper task died.
    #[error("the DHT set-up task failed: {0}")]
    Task(String),
}
