//! Test support (feature `testing`): the conformance suite every store runs, and real
//! PostgreSQL, MariaDB and Redis servers started on loopback for a test.
pub mod servers;
pub mod suite;
