//! Deterministic simulation: seeded RNG, virtual time, a network that drops, delays,
//! duplicates, reorders and partitions.
