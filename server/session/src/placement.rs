//! Backup placement by rendezvous (highest-random-weight) hashing: each session ranks every
//! member by `hash(member, session)` and takes the top N. Load spreads evenly, every node
//! computes the same answer, and a membership change moves only the sessions it must.
use crate::id::SessionId;
use shoal_cluster::MemberId;

fn score(member: &MemberId, id: &SessionId) -> u64 {
    // FNV-1a over both ids, then a splitmix64 finalizer to spread the bits.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in member.0.iter().chain(id.as_str().as_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The `n` best-ranked members for `id` among `candidates`, skipping `exclude`.
pub(crate) fn choose(
    id: &SessionId,
    candidates: impl Iterator<Item = MemberId>,
    exclude: &[MemberId],
    n: usize,
) -> Vec<MemberId> {
    let mut ranked: Vec<(u64, MemberId)> = candidates
        .filter(|m| !exclude.contains(m))
        .map(|m| (score(&m, id), m))
        .collect();
    ranked.sort_unstable_by(|a, b| b.cmp(a));
    ranked.into_iter().take(n).map(|(_, m)| m).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn spreads_evenly_and_is_stable() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let members: Vec<MemberId> = (0..4).map(|_| MemberId::random(&mut rng)).collect();
        let mut load = [0usize; 4];
        for _ in 0..8000 {
            let id = SessionId::generate(&mut rng);
            let pick = choose(&id, members.iter().copied(), &[], 1);
            let i = members.iter().position(|m| *m == pick[0]).unwrap_or(99);
            load[i] += 1;
            // Removing a member that was not picked does not move the session.
            let other = members
                .iter()
                .find(|m| **m != pick[0])
                .copied()
                .unwrap_or(pick[0]);
            assert_eq!(choose(&id, members.iter().copied(), &[other], 1), pick);
        }
        for l in load {
            assert!((1700..2300).contains(&l), "uneven load {load:?}");
        }
    }
}
