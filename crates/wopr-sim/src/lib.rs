//! Simulations that show how WOPR's distributed parts behave at scales a test cannot start for real.
//!
//! There is no library code here: each simulation is a benchmark (`benches/`), run with
//! `cargo bench -p wopr-sim --bench <name>`, and reports its figures as ratios (see
//! `docs/PERFORMANCE.md`). `discovery_sim` drives iroh-gossip's sans-IO protocol state machine
//! (HyParView and Plumtree) with a simulated network of 100 to 1,000 nodes, each holding WOPR's real
//! `wopr_proto::discovery::PeerTable`, and reports rounds to convergence, traffic per node and memory
//! per known peer.
#![deny(unsafe_code)]
#![warn(missing_docs)]
