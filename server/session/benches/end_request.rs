//! Manager end_request with a 1 KiB delta (DeltaManager, 2 peers), sans-io.
use criterion::{criterion_group, criterion_main, Criterion};
use rand::SeedableRng;
use shoal_cluster::MemberId;
use shoal_session::{build_manager, AttrValue, DeltaOp, ManagerConfig, RequestEnd};

fn bench(c: &mut Criterion) {
    let mut m = build_manager(
        "/app",
        MemberId([1; 16]),
        "node1",
        ManagerConfig::default(),
        rand::rngs::StdRng::seed_from_u64(1),
    );
    m.start(&[], 0);
    m.member_added(MemberId([2; 16]), 0);
    m.member_added(MemberId([3; 16]), 0);
    let s = m.create(0);
    let id = s.id.clone();
    let _ = m.end_request(
        RequestEnd {
            id: Some(id.clone()),
            accessed: true,
            replicate: true,
            ..Default::default()
        },
        0,
    );
    let mut now = 1;
    c.bench_function("delta end_request 1KiB", |b| {
        b.iter(|| {
            now += 1;
            let ops = vec![DeltaOp::Set(
                "data".into(),
                AttrValue::Bytes(vec![b'a'; 1024]),
            )];
            let end = RequestEnd {
                id: Some(id.clone()),
                ops,
                accessed: true,
                replicate: true,
                invalidate: false,
            };
            m.end_request(end, now).map(|o| o.len()).unwrap_or(0)
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
