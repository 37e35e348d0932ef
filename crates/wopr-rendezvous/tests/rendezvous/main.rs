//! Integration tests of wopr-rendezvous, in one binary: the DHT behaviour against a local mainline
//! testnet (`testnet`), and the byte-exact vectors of `docs/PROTOCOL.md` §16 with their independent
//! Python check (`vectors`).

mod testnet;
mod vectors;
