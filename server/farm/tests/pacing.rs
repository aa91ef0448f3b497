//! Pacing of content transfer (`FarmConfig::transfer_rate`) on a simulated cluster with a
//! virtual clock: the bytes sent to each receiver never exceed the token bucket (burst +
//! rate × elapsed), each receiver has its own bucket, and a paced rollout still completes,
//! in the time the rate implies.
mod sim;

use rand::{RngCore, SeedableRng};
use shoal_farm::{Digest, Outcome, SignedManifest};
use sim::{Sim, SimConfig, CHUNK};

/// Bytes per second per receiver in these tests: 32 chunks a second.
const RATE: u64 = 32 * CHUNK;
/// The sim's bucket (`transfer_burst`).
const BURST: u64 = 4 * CHUNK;

fn sim(rate: Option<u64>) -> Sim {
    let mut s = Sim::new(SimConfig {
        nodes: 3,
        op_rate: 0.0,
        transfer_rate: rate,
        ..SimConfig::new(11)
    });
    s.set_quiet();
    s.advance(2_000);
    s
}

fn content(size: u64) -> Vec<u8> {
    let mut b = vec![0; size as usize];
    rand::rngs::SmallRng::seed_from_u64(size).fill_bytes(&mut b);
    b
}

/// Deploys `size` bytes from node 0 and steps until the rollout ends; returns the chunks
/// sent by node 0 per receiver (time µs, bytes) and the rollout's duration in µs.
fn deploy_and_finish(s: &mut Sim, size: u64) -> (Vec<Vec<(u64, u64)>>, u64) {
    let bytes = content(size);
    let m = s.manifest_for("app", &bytes);
    let sm = SignedManifest::signed(m, &s.trusted_key().sk);
    let start = s.now_us();
    let first_chunk = s.report.chunks.len();
    s.deploy(0, sm, bytes.clone()).expect("deploy starts");
    let mut waited = 0;
    let outcome = loop {
        s.advance(10);
        waited += 10;
        let st = s.core(0).and_then(|c| c.rollout("app")).expect("status");
        if let Some(o) = st.outcome {
            break o;
        }
        assert!(waited < 20_000, "the rollout did not end in 20 s: {st:?}");
    };
    assert_eq!(outcome, Outcome::Activated { generation: 1 });
    for i in 0..3 {
        assert_eq!(
            s.blob(i, &Digest::of(&bytes)),
            Some(bytes.clone()),
            "node {i}"
        );
    }
    let mut per = vec![Vec::new(); 3];
    for &(t, from, to, len) in &s.report.chunks[first_chunk..] {
        if from == 0 {
            per[to].push((t, len));
        }
    }
    (per, s.now_us() - start)
}

#[test]
fn bytes_to_each_receiver_stay_within_the_token_bucket() {
    let size = 96 * CHUNK;
    let mut s = sim(Some(RATE));
    let (per, took) = deploy_and_finish(&mut s, size);
    for (to, sent) in per.iter().enumerate().skip(1) {
        let total: u64 = sent.iter().map(|c| c.1).sum();
        assert!(total >= size, "receiver n{to} got {total} of {size} bytes");
        // Every interval between two sends: bytes ≤ burst + rate × elapsed.
        for i in 0..sent.len() {
            let mut bytes = 0;
            for &(t, len) in &sent[i..] {
                bytes += len;
                let allowed = BURST as f64 + RATE as f64 * (t - sent[i].0) as f64 / 1e6;
                assert!(
                    bytes as f64 <= allowed + 1.0,
                    "n{to}: {bytes} bytes in {} µs from chunk {i}, the bucket allows {allowed}",
                    t - sent[i].0
                );
            }
        }
        let span = sent.last().map_or(0, |c| c.0) - sent[0].0;
        let least = (size - BURST) as f64 / RATE as f64 * 1e6;
        assert!(span as f64 >= least * 0.99, "n{to}: {span} µs < {least}");
    }
    // Paced, the rollout takes what the rate implies, not much more.
    let implied = size * 1_000_000 / RATE;
    assert!(
        took < implied + 1_000_000,
        "{took} µs for {size} bytes at {RATE} B/s"
    );
}

#[test]
fn each_receiver_has_its_own_bucket_and_unpaced_is_faster() {
    let size = 64 * CHUNK;
    let mut s = sim(Some(RATE));
    let (per, took_paced) = deploy_and_finish(&mut s, size);
    // Both receivers move at the full rate at once (not half each).
    let ends: Vec<u64> = per[1..]
        .iter()
        .map(|c| c.last().map_or(0, |c| c.0))
        .collect();
    let starts: Vec<u64> = per[1..].iter().map(|c| c[0].0).collect();
    for (s, e) in starts.iter().zip(&ends) {
        let rate = size as f64 / ((e - s) as f64 / 1e6);
        assert!(
            rate > RATE as f64 * 0.9 && rate < RATE as f64 * 1.2,
            "a receiver was sent {rate:.0} B/s with a rate of {RATE}"
        );
    }
    let mut u = sim(None);
    let (_, took_unpaced) = deploy_and_finish(&mut u, size);
    assert!(
        took_unpaced * 3 < took_paced,
        "unpaced {took_unpaced} µs, paced {took_paced} µs"
    );
}

#[test]
fn the_window_bounds_what_is_sent_beyond_the_acknowledgement() {
    // The sim's window is 4 chunks: with acks delayed by the network, what node 0 sends to a
    // receiver before that receiver could have acknowledged anything is at most the window.
    let size = 40 * CHUNK;
    let mut s = sim(None);
    let (per, _) = deploy_and_finish(&mut s, size);
    for (to, sent) in per.iter().enumerate().skip(1) {
        let t0 = sent[0].0;
        let at_once: u64 = sent.iter().filter(|c| c.0 == t0).map(|c| c.1).sum();
        assert!(at_once <= 4 * CHUNK, "n{to}: {at_once} bytes sent at once");
    }
}
