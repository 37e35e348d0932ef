//! Probes of every sandbox property on this host (in progress).
