//! The interceptor stack and the native interceptors, driven directly.
use shoal_cluster::interceptors::{
    build, Compression, CompressionConfig, Coordinator, CoordinatorConfig, Encrypt, EncryptConfig,
    Fragmentation, FragmentationConfig, Order, OrderConfig, Throughput,
};
use shoal_cluster::StackError;
use shoal_cluster::{
    ChannelMessage, Interceptor, InterceptorError, InterceptorStack, Member, MemberId, SendOptions,
};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const A: MemberId = MemberId([1; 16]);
const B: MemberId = MemberId([2; 16]);

fn msg(id: u64, payload: &[u8], flags: u32) -> ChannelMessage {
    ChannelMessage {
        id,
        from: A,
        destinations: vec![B],
        options: SendOptions(flags),
        payload: payload.to_vec(),
    }
}

/// Send through `tx`, then receive each output through `rx` as B would.
fn through(
    tx: &mut InterceptorStack,
    rx: &mut InterceptorStack,
    now: Instant,
    m: ChannelMessage,
) -> Vec<ChannelMessage> {
    let mut got = Vec::new();
    for mut w in tx.run_send(now, m).expect("send stack") {
        w.destinations.clear();
        got.extend(rx.run_receive(now, w).expect("receive stack"));
    }
    got
}

/// Appends its tag on send (so the order of layers shows in the payload) and strips it on
/// receive, checking it is the expected one.
struct Tag(&'static str, u32);
impl Interceptor for Tag {
    fn name(&self) -> &str {
        self.0
    }
    fn option_flag(&self) -> u32 {
        self.1
    }
    fn on_send(
        &mut self,
        _: Instant,
        mut m: ChannelMessage,
        out: &mut Vec<ChannelMessage>,
    ) -> Result<(), InterceptorError> {
        m.payload.extend_from_slice(self.0.as_bytes());
        out.push(m);
        Ok(())
    }
    fn on_receive(
        &mut self,
        _: Instant,
        mut m: ChannelMessage,
        out: &mut Vec<ChannelMessage>,
    ) -> Result<(), InterceptorError> {
        let n = m.payload.len() - self.0.len();
        if &m.payload[n..] != self.0.as_bytes() {
            return Err(InterceptorError::new(self.0, "wrong layer order"));
        }
        m.payload.truncate(n);
        out.push(m);
        Ok(())
    }
}

fn tags(flags: &[(&'static str, u32)]) -> InterceptorStack {
    let mut s = InterceptorStack::new();
    for (n, f) in flags {
        s.push(Box::new(Tag(n, *f))).expect("unique");
    }
    s
}

#[test]
fn send_runs_top_down_receive_bottom_up_and_flags_select() {
    let now = Instant::now();
    let mut tx = tags(&[("a", 0), ("b", SendOptions::USE_ACK), ("c", 0)]);
    let out = tx.run_send(now, msg(1, b"", 0)).expect("ok");
    assert_eq!(out[0].payload, b"ac", "b does not match flag 0");
    let out = tx
        .run_send(now, msg(2, b"", SendOptions::USE_ACK | 1))
        .expect("ok");
    assert_eq!(out[0].payload, b"abc", "top first");
    let mut rx = tags(&[("a", 0), ("b", SendOptions::USE_ACK), ("c", 0)]);
    let back = rx
        .run_receive(now, out[0].clone())
        .expect("bottom-up strips c, b, a");
    assert!(back[0].payload.is_empty());
    assert_eq!(tx.counts("b").expect("b").skipped, 1);
    // Reordering changes the wire order; a receiver with the old order refuses.
    tx.reorder(&["c", "b", "a"]).expect("reorder");
    assert_eq!(tx.names(), ["c", "b", "a"]);
    let out = tx
        .run_send(now, msg(3, b"", SendOptions::USE_ACK))
        .expect("ok");
    assert_eq!(out[0].payload, b"cba");
    assert!(rx.run_receive(now, out[0].clone()).is_err());
    assert_eq!(
        tx.push(Box::new(Tag("a", 0))),
        Err(StackError::Duplicate("a".into()))
    );
    assert!(matches!(tx.remove("zz"), Err(StackError::NotFound(_))));
    tx.remove("b").expect("present");
    tx.move_to("a", 0).expect("move");
    assert_eq!(tx.names(), ["a", "c"]);
    let d = tx.describe();
    assert_eq!(d[0].name, "a");
    assert!(d[0]
        .counters
        .iter()
        .any(|(k, v)| k == "stack_send_in" && *v == 3));
}

#[test]
fn fragmentation_splits_and_reassembles_in_any_order() {
    let now = Instant::now();
    let cfg = FragmentationConfig {
        max_size: 1000,
        ..Default::default()
    };
    let mut tx = InterceptorStack::new()
        .with(Box::new(Fragmentation::new(cfg.clone())))
        .expect("ok");
    let mut rx = InterceptorStack::new()
        .with(Box::new(Fragmentation::new(cfg)))
        .expect("ok");
    let big: Vec<u8> = (0..10_500u32).map(|i| (i % 251) as u8).collect();
    let mut pieces = tx.run_send(now, msg(42, &big, 0)).expect("split");
    assert_eq!(pieces.len(), 11);
    pieces.reverse();
    let mut got = Vec::new();
    for p in pieces {
        got.extend(rx.run_receive(now, p).expect("piece"));
    }
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, 42, "reassembled message keeps the original id");
    assert_eq!(got[0].payload, big);
    // Small messages pass whole; an incomplete message expires.
    assert_eq!(
        through(&mut tx, &mut rx, now, msg(43, b"hi", 0))[0].payload,
        b"hi"
    );
    let pieces = tx.run_send(now, msg(44, &big, 0)).expect("split");
    rx.run_receive(now, pieces[0].clone()).expect("first piece");
    rx.heartbeat(now + Duration::from_secs(61));
    let f = rx.get::<Fragmentation>().expect("layer");
    assert_eq!((f.expired, f.reassembled), (1, 1));
}

#[test]
fn compression_round_trip_and_bomb_guard() {
    let now = Instant::now();
    let mut tx = InterceptorStack::new()
        .with(Box::new(Compression::new(CompressionConfig::default())))
        .expect("ok");
    let small = CompressionConfig {
        max_inflated: 1000,
        ..Default::default()
    };
    let mut rx = InterceptorStack::new()
        .with(Box::new(Compression::new(small)))
        .expect("ok");
    let text = b"session attribute ".repeat(40);
    let wire = tx.run_send(now, msg(1, &text, 0)).expect("ok");
    assert!(
        wire[0].payload.len() < text.len() / 4,
        "compressible text shrinks"
    );
    assert_eq!(
        rx.run_receive(now, wire[0].clone()).expect("ok")[0].payload,
        text
    );
    let random: Vec<u8> = (0..64u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let wire = tx.run_send(now, msg(2, &random, 0)).expect("ok");
    assert_eq!(
        wire[0].payload.len(),
        random.len() + 1,
        "incompressible data travels raw"
    );
    let bomb = tx
        .run_send(now, msg(3, &vec![0u8; 100_000], 0))
        .expect("ok");
    let e = rx
        .run_receive(now, bomb[0].clone())
        .expect_err("over max_inflated");
    assert!(e.reason.contains("max_inflated"), "{e}");
    let mut bad = wire[0].clone();
    bad.payload[0] = 1;
    bad.payload.truncate(5);
    assert!(
        rx.run_receive(now, bad).is_err(),
        "corrupt deflate stream is an error, not a panic"
    );
}

#[test]
fn compression_round_trips_any_size_and_rejects_truncation() {
    use rand::{Rng, SeedableRng};
    let now = Instant::now();
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let mut tx = InterceptorStack::new()
        .with(Box::new(Compression::new(CompressionConfig::default())))
        .expect("ok");
    let mut rx = InterceptorStack::new()
        .with(Box::new(Compression::new(CompressionConfig::default())))
        .expect("ok");
    for round in 0..200u64 {
        let len = rng.gen_range(0..20_000);
        let alphabet = rng.gen_range(1..=256u32);
        let data: Vec<u8> = (0..len).map(|_| rng.gen_range(0..alphabet) as u8).collect();
        let wire = tx
            .run_send(now, msg(round, &data, 0))
            .expect("send")
            .remove(0);
        assert!(
            wire.payload.len() <= data.len() + 1,
            "never grows beyond the flag byte"
        );
        assert_eq!(
            rx.run_receive(now, wire.clone()).expect("receive")[0].payload,
            data,
            "round {round}"
        );
        if wire.payload[0] == 1 && wire.payload.len() > 8 {
            let mut cut = wire;
            let half = cut.payload.len() / 2;
            cut.payload.truncate(half);
            assert!(
                rx.run_receive(now, cut).is_err(),
                "round {round}: truncated stream is an error"
            );
        }
    }
}

#[test]
fn encrypt_round_trip_tamper_and_replay() {
    let now = Instant::now();
    let key = [7u8; 32];
    let mut tx = InterceptorStack::new()
        .with(Box::new(Encrypt::new(EncryptConfig::new(key), 1)))
        .expect("ok");
    let mut rx = InterceptorStack::new()
        .with(Box::new(Encrypt::new(EncryptConfig::new(key), 2)))
        .expect("ok");
    let wire = tx.run_send(now, msg(1, b"secret session", 0)).expect("ok");
    assert!(
        !wire[0].payload.windows(6).any(|w| w == b"secret"),
        "ciphertext hides the plaintext"
    );
    assert_eq!(
        rx.run_receive(now, wire[0].clone()).expect("ok")[0].payload,
        b"secret session"
    );
    let e = rx.run_receive(now, wire[0].clone()).expect_err("replay");
    assert!(e.reason.contains("replayed"), "{e}");
    let mut t = tx.run_send(now, msg(2, b"x", 0)).expect("ok").remove(0);
    let last = t.payload.len() - 1;
    t.payload[last] ^= 1;
    assert!(rx
        .run_receive(now, t)
        .expect_err("tamper")
        .reason
        .contains("tampered"));
    let mut spoof = tx.run_send(now, msg(3, b"x", 0)).expect("ok").remove(0);
    spoof.from = B;
    assert!(
        rx.run_receive(now, spoof).is_err(),
        "the sender id is authenticated"
    );
    let mut other = InterceptorStack::new()
        .with(Box::new(Encrypt::new(EncryptConfig::new([8; 32]), 3)))
        .expect("ok");
    let w = tx.run_send(now, msg(4, b"x", 0)).expect("ok").remove(0);
    assert!(other.run_receive(now, w).is_err(), "wrong key");
    // Outside the time window the nonce memory is gone (the node's dedup still applies).
    let late = now + Duration::from_secs(11);
    let w = tx.run_send(now, msg(5, b"y", 0)).expect("ok").remove(0);
    rx.run_receive(now, w.clone()).expect("first");
    rx.run_receive(late, w).expect("window expired");
}

#[test]
fn order_releases_in_sequence_and_skips_gaps_after_expire() {
    let now = Instant::now();
    let mut tx = InterceptorStack::new()
        .with(Box::new(Order::new(OrderConfig::default())))
        .expect("ok");
    let mut rx = InterceptorStack::new()
        .with(Box::new(Order::new(OrderConfig::default())))
        .expect("ok");
    let wire: Vec<ChannelMessage> = (0..6u8)
        .map(|i| {
            tx.run_send(now, msg(i as u64, &[i], 0))
                .expect("ok")
                .remove(0)
        })
        .collect();
    let mut got = Vec::new();
    for i in [2usize, 0, 1, 5, 3] {
        got.extend(
            rx.run_receive(now, wire[i].clone())
                .expect("ok")
                .into_iter()
                .map(|m| m.payload[0]),
        );
    }
    assert_eq!(got, [0, 1, 2, 3], "5 waits for 4");
    assert!(rx.heartbeat(now + Duration::from_secs(1)).is_empty());
    let released: Vec<u8> = rx
        .heartbeat(now + Duration::from_secs(4))
        .into_iter()
        .map(|m| m.payload[0])
        .collect();
    assert_eq!(released, [5], "gap at 4 given up after expire");
    assert!(
        rx.run_receive(now, wire[4].clone()).expect("ok").is_empty(),
        "late message dropped, order kept"
    );
    let o = rx.get::<Order>().expect("layer");
    assert_eq!((o.gaps_skipped, o.dropped_late), (1, 1));
}

fn member(b: u8, inc: u64) -> Member {
    Member {
        id: MemberId([b; 16]),
        name: format!("n{b}"),
        addr: ([127, 0, 0, 1], 4000 + b as u16).into(),
        domain: "d".into(),
        incarnation: inc,
        meta: BTreeMap::new(),
    }
}

#[test]
fn coordinator_is_the_oldest_member_everywhere() {
    let now = Instant::now();
    let (m1, m2, m3) = (member(9, 100), member(1, 200), member(5, 150));
    let mut views = Vec::new();
    for (local, others) in [(&m1, [&m2, &m3]), (&m2, [&m3, &m1]), (&m3, [&m1, &m2])] {
        let mut s = InterceptorStack::new()
            .with(Box::new(Coordinator::new(CoordinatorConfig::default())))
            .expect("ok");
        s.attach(local);
        for o in others {
            s.member_added(now, o);
        }
        views.push(
            s.get::<Coordinator>()
                .and_then(|c| c.coordinator().map(|m| m.id)),
        );
        if local.id == m3.id {
            s.member_disappeared(now, &m1);
            assert_eq!(
                s.get::<Coordinator>()
                    .and_then(|c| c.coordinator().map(|m| m.id)),
                Some(m3.id)
            );
            assert!(s.get::<Coordinator>().is_some_and(|c| c.is_coordinator()));
        }
    }
    assert!(views.iter().all(|v| *v == Some(m1.id)), "{views:?}");
}

#[test]
fn factory_builds_by_name_and_rejects_unknown_names_keys_and_values() {
    let opts = |kv: &[(&str, &str)]| {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>()
    };
    let f = build(
        "Fragmentation",
        &opts(&[("maxSize", "2048"), ("expire", "1000")]),
    )
    .expect("camelCase accepted");
    assert!(f
        .describe()
        .contains(&("max_size".to_string(), "2048".to_string())));
    build("OrderInterceptor", &opts(&[])).expect("Tomcat class-style name");
    build("Throughput", &opts(&[("option_flag", "0x08")])).expect("hex flag");
    let e = build("Teleport", &opts(&[])).err().expect("unknown name");
    assert!(e.contains("Teleport") && e.contains("Order"), "{e}");
    let e = build("Order", &opts(&[("expire", "1000"), ("colour", "red")]))
        .err()
        .expect("unknown key");
    assert!(e.contains("colour"), "{e}");
    let e = build("Order", &opts(&[("expire", "soon")]))
        .err()
        .expect("bad value");
    assert!(e.contains("expire") && e.contains("soon"), "{e}");
    let e = build("Encrypt", &opts(&[("encryption_key", "abcd")]))
        .err()
        .expect("short key");
    assert!(e.contains("32"), "{e}");
    let e = build("Encrypt", &opts(&[])).err().expect("missing key");
    assert!(e.contains("encryption_key"), "{e}");
    let key = "11".repeat(32);
    build("Encrypt", &opts(&[("encryptionKey", key.as_str())])).expect("valid key");
    let e = build(
        "StaticMembership",
        &opts(&[("members", "10.0.0.1:4000, nohost")]),
    )
    .err()
    .expect("bad addr");
    assert!(e.contains("nohost"), "{e}");
    let t: Box<dyn Interceptor> = Box::new(Throughput::default());
    assert_eq!(t.name(), "Throughput");
}
