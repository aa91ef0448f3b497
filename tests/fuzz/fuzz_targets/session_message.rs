//! Session replication messages from a peer: the input is a sequence of payloads (each a
//! big-endian u16 length, then the bytes) that a DeltaManager or BackupManager (byte 0)
//! receives from a member, as the channel hands them over. Decoding must never panic; a
//! payload that decodes encodes again to the same message; the manager must never panic on
//! any message, whatever the order, and its time only moves forward.
//! Run: `scripts/fuzz.sh 60 session_message` (docs/fuzzing.md).
#![no_main]
use libfuzzer_sys::fuzz_target;
use rand::SeedableRng;
use shoal_cluster::MemberId;
use shoal_session::{build_manager, decode, encode, ManagerConfig, ManagerKind, ReplicationMode};

const CONTEXT: &str = "/app";

fuzz_target!(|data: &[u8]| {
    let Some((&mode, mut rest)) = data.split_first() else {
        return;
    };
    let (local, peer, third) = (MemberId([1; 16]), MemberId([2; 16]), MemberId([3; 16]));
    let config = ManagerConfig {
        manager: if mode & 1 == 0 {
            ManagerKind::Delta
        } else {
            ManagerKind::Backup
        },
        replication: if mode & 2 == 0 {
            ReplicationMode::Sync
        } else {
            ReplicationMode::Async
        },
        ..ManagerConfig::default()
    };
    let rng = rand::rngs::StdRng::seed_from_u64(1);
    let mut manager = build_manager(CONTEXT, local, "node1", config, rng);
    let mut now = 1_000_000;
    let _ = manager.start(&[local, peer, third], now);
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let payload = &rest[2..(2 + len).min(rest.len())];
        rest = &rest[2 + payload.len()..];
        if let Ok(env) = decode(payload) {
            let again = encode(&env.context, &env.msg);
            let back = decode(&again).expect("a re-encoded message decodes");
            assert_eq!(back, env);
        }
        let _ = manager.handle_payload(peer, payload, now);
        now += 250;
        let _ = manager.handle_timeout(now);
    }
    if mode & 4 != 0 {
        // The peer leaves after what it sent: repairs and re-homing run on that state.
        let _ = manager.member_removed(peer, now);
        let _ = manager.handle_timeout(now + 60_000);
    }
});
