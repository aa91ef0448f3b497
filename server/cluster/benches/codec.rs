//! Frame encode+decode for 100 B / 1 KiB / 10 KiB Data frames, and the send+receive stack
//! with Compression and Encrypt. Run: `cargo bench -p shoal-cluster --bench codec`.
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use shoal_cluster::interceptors::{Compression, CompressionConfig, Encrypt, EncryptConfig};
use shoal_cluster::{
    Body, ChannelMessage, Envelope, FrameCodec, InterceptorStack, MemberId, SendOptions,
};
use std::time::Instant;

const SIZES: [usize; 3] = [100, 1024, 10 * 1024];

fn payload(n: usize) -> Vec<u8> {
    // Session-like bytes: compressible but not trivially.
    (0..n)
        .map(|i| b"attr=value;"[i % 11] ^ (i / 97) as u8)
        .collect()
}

fn codec(c: &mut Criterion) {
    let codec = FrameCodec::default();
    let mut g = c.benchmark_group("frame_encode_decode");
    for n in SIZES {
        let env = Envelope {
            id: 1,
            sender: MemberId([1; 16]),
            body: Body::Data {
                options: SendOptions(SendOptions::USE_ACK),
                payload: payload(n),
            },
        };
        g.throughput(Throughput::Bytes(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &env, |b, env| {
            let mut buf = Vec::with_capacity(n + 64);
            b.iter(|| {
                buf.clear();
                codec.encode(env, &mut buf).expect("encode");
                black_box(codec.decode(&buf).expect("decode"));
            })
        });
    }
    g.finish();
}

fn layers(kind: &str, seed: u64) -> InterceptorStack {
    let mut s = InterceptorStack::new();
    if kind.contains("compress") {
        s.push(Box::new(Compression::new(CompressionConfig::default())))
            .expect("push");
    }
    if kind.contains("encrypt") {
        s.push(Box::new(Encrypt::new(EncryptConfig::new([9; 32]), seed)))
            .expect("push");
    }
    s
}

fn stack(c: &mut Criterion) {
    let now = Instant::now();
    for kind in ["compress", "encrypt", "compress_encrypt"] {
        let (mut tx, mut rx) = (layers(kind, 1), layers(kind, 2));
        let mut g = c.benchmark_group(format!("stack_roundtrip_{kind}"));
        for n in SIZES {
            g.throughput(Throughput::Bytes(n as u64));
            let p = payload(n);
            let mut id = 0u64;
            g.bench_function(BenchmarkId::from_parameter(n), |b| {
                b.iter(|| {
                    id += 1;
                    let m = ChannelMessage {
                        id,
                        from: MemberId([1; 16]),
                        destinations: vec![MemberId([2; 16])],
                        options: SendOptions(0),
                        payload: p.clone(),
                    };
                    for w in tx.run_send(now, m).expect("send") {
                        black_box(rx.run_receive(now, w).expect("receive"));
                    }
                })
            });
        }
        g.finish();
    }
}

/// The node's send path (stack, ids, outcome, encode) for an async send to 2 peers, on a
/// node taken out of a joined simulated cluster; the frames it emits are dropped.
fn node_send(c: &mut Criterion) {
    let mut sim = shoal_cluster::sim::Sim::cluster(1, 3);
    let joined = sim.run_until(std::time::Duration::from_secs(3), |s| s.fully_connected());
    assert!(joined, "cluster did not form");
    let peers: Vec<MemberId> = [1, 2].iter().filter_map(|&i| sim.id(i)).collect();
    let Some(mut node) = sim.nodes[0].node.take() else {
        return;
    };
    let now = sim.now;
    let mut g = c.benchmark_group("node_send_async_2_peers");
    for n in SIZES {
        let p = payload(n);
        g.throughput(Throughput::Elements(1));
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                node.send(
                    now,
                    &peers,
                    p.clone(),
                    SendOptions(SendOptions::ASYNCHRONOUS),
                );
                while let Some(a) = node.poll_action() {
                    black_box(a);
                }
                while let Some(e) = node.poll_event() {
                    black_box(e);
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, codec, stack, node_send);
criterion_main!(benches);
