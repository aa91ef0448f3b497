//! The frame decoder on hostile input: seeded random buffers and mutations of valid frames
//! (bit flips, truncation, length and version rewrites). It must return Ok(None), a frame, or
//! an error; never panic, never claim more bytes than it was given. (The cargo-fuzz target
//! `fuzz/fuzz_targets/frame_decode.rs` explores the same contract without bounds.)
use rand::{Rng, SeedableRng};
use shoal_cluster::{AckStatus, Body, Envelope, FrameCodec, Member, MemberId, SendOptions};
use std::collections::BTreeMap;

fn samples() -> Vec<Vec<u8>> {
    let codec = FrameCodec::default();
    let member = Member {
        id: MemberId([5; 16]),
        name: "node1".into(),
        addr: ([127, 0, 0, 1], 4000).into(),
        domain: "d".into(),
        incarnation: 9,
        meta: BTreeMap::from([("contexts".to_string(), "/app".to_string())]),
    };
    let bodies = vec![
        Body::Challenge { nonce: [1; 16] },
        Body::Hello {
            member: member.clone(),
            nonce: [2; 16],
            proof: [3; 32],
        },
        Body::HelloAck {
            member,
            proof: [4; 32],
        },
        Body::Refused {
            reason: "no".into(),
        },
        Body::Data {
            options: SendOptions(6),
            payload: vec![7; 300],
        },
        Body::Ack {
            of: 99,
            status: AckStatus::Failed("x".into()),
        },
        Body::Ping { nonce: 1 },
        Body::Leave,
    ];
    bodies
        .into_iter()
        .map(|body| {
            let mut out = Vec::new();
            codec
                .encode(
                    &Envelope {
                        id: 3,
                        sender: MemberId([8; 16]),
                        body,
                    },
                    &mut out,
                )
                .expect("encode");
            out
        })
        .collect()
}

fn decode_all(codec: &FrameCodec, buf: &[u8]) -> usize {
    let mut rest = buf;
    let mut frames = 0;
    loop {
        match codec.decode(rest) {
            Ok(Some((_, n))) => {
                assert!(n > 0 && n <= rest.len(), "consumed {n} of {}", rest.len());
                rest = &rest[n..];
                frames += 1;
            }
            Ok(None) | Err(_) => return frames,
        }
    }
}

#[test]
fn random_and_mutated_buffers_never_panic() {
    let codec = FrameCodec::new(64 * 1024);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let valid = samples();
    let mut decoded = 0;
    for round in 0..5000 {
        let mut buf = if round % 4 == 0 {
            let len = rng.gen_range(0..512);
            (0..len).map(|_| rng.gen()).collect::<Vec<u8>>()
        } else {
            valid[rng.gen_range(0..valid.len())].clone()
        };
        match rng.gen_range(0..5) {
            0 => {
                for _ in 0..rng.gen_range(1..8) {
                    let i = rng.gen_range(0..buf.len().max(1));
                    if let Some(b) = buf.get_mut(i) {
                        *b ^= 1 << rng.gen_range(0..8);
                    }
                }
            }
            1 => buf.truncate(rng.gen_range(0..=buf.len())),
            2 if buf.len() >= 4 => buf[..4].copy_from_slice(&rng.gen::<u32>().to_be_bytes()),
            3 if buf.len() >= 6 => buf[4..6].copy_from_slice(&rng.gen::<u16>().to_be_bytes()),
            _ => {
                let extra: Vec<u8> = (0..rng.gen_range(0..64)).map(|_| rng.gen()).collect();
                buf.extend(extra);
            }
        }
        decoded += decode_all(&codec, &buf);
    }
    assert!(
        decoded > 100,
        "mutations kept some frames valid ({decoded}): the test reaches the body decoder"
    );
}

#[test]
fn every_sample_round_trips_and_every_prefix_asks_for_more() {
    let codec = FrameCodec::default();
    for s in samples() {
        assert_eq!(decode_all(&codec, &s), 1);
        for cut in 0..s.len() {
            assert!(
                matches!(codec.decode(&s[..cut]), Ok(None)),
                "prefix {cut} of {}",
                s.len()
            );
        }
    }
}
