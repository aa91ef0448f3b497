//! Helpers for shoal's multi-process tests: spawn real `shoal` processes on loopback.
