//! Three channels in one process on loopback, found through the in-memory discovery twin:
//! membership, every send mode, completion handles, graceful leave, counters.
use shoal_cluster::{DisappearReason, InterceptorStack, MemberId, SendOptions};
use shoal_net::{
    loopback_settings, Channel, Discovery, Incoming, MembershipEvent, MemoryDiscovery, MemoryNet,
    Outcome,
};
use shoal_testkit::poll;
use std::time::Duration;

const SECRET: &str = "in-process-test-secret";

async fn start(name: &str, net: &MemoryNet) -> (Channel, Incoming) {
    let s = loopback_settings(name, SECRET, Vec::new());
    let d: Box<dyn Discovery> = Box::new(MemoryDiscovery::new(
        net.clone(),
        Duration::from_millis(100),
    ));
    let (ch, inc) = Channel::start_with(s, InterceptorStack::default(), vec![d])
        .await
        .expect("start");
    net.announce(ch.local().addr);
    (ch, inc)
}

async fn wait_members(ch: &Channel, n: usize) {
    let found = poll(Duration::from_secs(5), || ch.members().len() == n).await;
    assert!(
        found,
        "{} has {:?}, wanted {n} members",
        ch.local().name,
        ch.members()
    );
}

async fn recv(inc: &mut Incoming) -> shoal_net::IncomingMessage {
    tokio::time::timeout(Duration::from_secs(5), inc.recv())
        .await
        .expect("message in time")
        .expect("channel open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_every_send_mode_and_leave() {
    let net = MemoryNet::default();
    let (a, _ia) = start("a", &net).await;
    let (b, mut ib) = start("b", &net).await;
    let (c, mut ic) = start("c", &net).await;
    for ch in [&a, &b, &c] {
        wait_members(ch, 2).await;
    }
    let dests: Vec<MemberId> = vec![b.local().id, c.local().id];

    // use_ack: Acked by both.
    let r = a
        .send(
            &dests,
            b"ack me".to_vec(),
            SendOptions(SendOptions::USE_ACK),
        )
        .await;
    assert!(r.results.iter().all(|(_, o)| *o == Outcome::Acked), "{r:?}");
    assert_eq!(recv(&mut ib).await.payload, b"ack me");
    assert_eq!(recv(&mut ic).await.payload, b"ack me");

    // synchronized_ack: the send finishes only when the receivers complete; c drops its
    // completion, which must surface as a failure naming c.
    let send = tokio::spawn({
        let (a, dests) = (a.clone(), dests.clone());
        async move {
            a.send(
                &dests,
                b"process me".to_vec(),
                SendOptions(SendOptions::SYNCHRONIZED_ACK),
            )
            .await
        }
    });
    let mb = recv(&mut ib).await;
    let mc = recv(&mut ic).await;
    mb.completion
        .expect("sync_ack carries a completion")
        .complete();
    drop(mc);
    let r = send.await.expect("join");
    assert_eq!(r.results[0], (b.local().id, Outcome::Processed), "{r:?}");
    match &r.results[1].1 {
        Outcome::Failed(why) => assert!(why.contains("c ("), "failure names the member: {why}"),
        o => panic!("expected c to fail, got {o:?}"),
    }

    // asynchronous: Queued at once, then delivered in order.
    for i in 0..100u32 {
        let r = a
            .send(
                &dests,
                i.to_be_bytes().to_vec(),
                SendOptions(SendOptions::ASYNCHRONOUS),
            )
            .await;
        assert!(r.results.iter().all(|(_, o)| *o == Outcome::Queued));
    }
    for i in 0..100u32 {
        assert_eq!(recv(&mut ib).await.payload, i.to_be_bytes());
        assert_eq!(recv(&mut ic).await.payload, i.to_be_bytes());
    }
    let st = a.stats().await;
    let pb = st.peers.iter().find(|p| p.name == "b").expect("b in stats");
    assert!(pb.messages_sent >= 102 && pb.bytes_sent > 0, "{pb:?}");

    // Graceful leave: the others drop c with reason Left.
    let mut events = a.subscribe();
    c.shutdown().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        let ev = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("c disappears in time")
            .expect("event");
        if let MembershipEvent::Disappeared { member, reason } = ev {
            assert_eq!(member.name, "c");
            assert_eq!(reason, DisappearReason::Left);
            break;
        }
    }
    wait_members(&a, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_queue_applies_backpressure_and_counts_it() {
    let net = MemoryNet::default();
    let mut s = loopback_settings("small-queue", SECRET, Vec::new());
    s.queue_bytes = 64 * 1024;
    let d: Box<dyn Discovery> = Box::new(MemoryDiscovery::new(
        net.clone(),
        Duration::from_millis(100),
    ));
    let (a, _ia) = Channel::start_with(s, InterceptorStack::default(), vec![d])
        .await
        .expect("start");
    net.announce(a.local().addr);
    let (b, mut ib) = start("b", &net).await;
    wait_members(&a, 1).await;
    let dest = [b.local().id];
    // 4 MiB through a 64 KiB queue: the sender must wait several times, and all arrives.
    let n = 1024;
    let sender = tokio::spawn({
        let a = a.clone();
        async move {
            for _ in 0..n {
                a.send(
                    &dest,
                    vec![7u8; 4096],
                    SendOptions(SendOptions::ASYNCHRONOUS),
                )
                .await;
            }
        }
    });
    for _ in 0..n {
        assert_eq!(recv(&mut ib).await.payload.len(), 4096);
    }
    sender.await.expect("join");
    let st = a.stats().await;
    assert!(
        st.queue_full > 0,
        "a 64 KiB queue must fill with 4 MiB queued: {st:?}"
    );
    assert_eq!(st.queue_bytes_capacity, 64 * 1024);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ack_timeout_names_the_silent_member() {
    let net = MemoryNet::default();
    let mut s = loopback_settings("impatient", SECRET, Vec::new());
    s.node.ack_timeout = Duration::from_millis(300);
    let d: Box<dyn Discovery> = Box::new(MemoryDiscovery::new(
        net.clone(),
        Duration::from_millis(100),
    ));
    let (a, _ia) = Channel::start_with(s, InterceptorStack::default(), vec![d])
        .await
        .expect("start");
    net.announce(a.local().addr);
    let (b, mut ib) = start("slowpoke", &net).await;
    wait_members(&a, 1).await;
    let send = tokio::spawn({
        let (a, dest) = (a.clone(), b.local().id);
        async move {
            a.send(
                &[dest],
                b"take your time".to_vec(),
                SendOptions(SendOptions::SYNCHRONIZED_ACK),
            )
            .await
        }
    });
    // Hold the completion past the ack timeout.
    let held = recv(&mut ib).await;
    let r = send.await.expect("join");
    drop(held);
    let failures = r.failures();
    assert_eq!(failures.len(), 1, "{r:?}");
    assert!(
        failures[0].1.contains("slowpoke"),
        "the failure names the member: {r}"
    );
    assert!(r.to_string().contains("slowpoke"), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_async_load_never_drops_a_live_member() {
    let net = MemoryNet::default();
    let (a, _ia) = start("loaded", &net).await;
    let (b, mut ib) = start("lb", &net).await;
    let (c, mut ic) = start("lc", &net).await;
    wait_members(&a, 2).await;
    let mut events = a.subscribe();
    let dests = [b.local().id, c.local().id];
    let n = 10_000usize;
    let sender = tokio::spawn({
        let a = a.clone();
        async move {
            for _ in 0..n {
                a.send(
                    &dests,
                    vec![3u8; 1024],
                    SendOptions(SendOptions::ASYNCHRONOUS),
                )
                .await;
            }
        }
    });
    let (mut got_b, mut got_c) = (0, 0);
    while got_b < n || got_c < n {
        tokio::select! {
            Some(_) = ib.recv(), if got_b < n => got_b += 1,
            Some(_) = ic.recv(), if got_c < n => got_c += 1,
            _ = tokio::time::sleep(Duration::from_secs(30)) => panic!("stalled at {got_b}/{got_c} of {n}"),
        }
    }
    sender.await.expect("join");
    while let Ok(ev) = events.try_recv() {
        assert!(
            !matches!(ev, MembershipEvent::Disappeared { .. }),
            "a live member was dropped under load: {ev:?}"
        );
    }
    assert_eq!(a.members().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_message_fails_with_a_clear_reason() {
    let net = MemoryNet::default();
    let (a, _ia) = start("big-a", &net).await;
    let (b, _ib) = start("big-b", &net).await;
    wait_members(&a, 1).await;
    let max = shoal_cluster::DEFAULT_MAX_FRAME;
    let r = a
        .send(
            &[b.local().id],
            vec![0; max + 1],
            SendOptions(SendOptions::USE_ACK),
        )
        .await;
    let f = r.failures();
    assert_eq!(f.len(), 1, "{r:?}");
    assert!(
        f[0].1.contains("exceeds") && f[0].1.contains("Fragmentation"),
        "{}",
        f[0].1
    );
    // The connection survives: a normal message still goes through.
    let r = a
        .send(
            &[b.local().id],
            b"small".to_vec(),
            SendOptions(SendOptions::USE_ACK),
        )
        .await;
    assert!(r.ok(), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_application_pushes_back_on_the_sender() {
    let net = MemoryNet::default();
    let channel = |name: &str, queue: usize, incoming: usize| {
        let mut s = loopback_settings(name, SECRET, Vec::new());
        s.queue_bytes = queue;
        s.incoming_bytes = incoming;
        let d: Box<dyn Discovery> = Box::new(MemoryDiscovery::new(
            net.clone(),
            Duration::from_millis(100),
        ));
        Channel::start_with(s, InterceptorStack::default(), vec![d])
    };
    let (fast, _if) = channel("fast", 1 << 20, 64 << 20).await.expect("fast");
    net.announce(fast.local().addr);
    let limit = 256 * 1024;
    let (slow, mut islow) = channel("slow", 64 << 20, limit).await.expect("slow");
    net.announce(slow.local().addr);
    wait_members(&fast, 1).await;
    wait_members(&slow, 1).await;

    // 32 MiB to a receiver that reads nothing: more than every buffer on the way can hold.
    let n = 32 * 1024;
    let dest = [slow.local().id];
    let sender = tokio::spawn({
        let fast = fast.clone();
        async move {
            for _ in 0..n {
                fast.send(
                    &dest,
                    vec![9u8; 1024],
                    SendOptions(SendOptions::ASYNCHRONOUS),
                )
                .await;
            }
        }
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while fast.stats().await.queue_full == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the sender never had to wait"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let backlog = slow.stats().await.incoming_backlog_bytes;
    assert!(
        backlog <= (limit + 128 * 1024) as u64,
        "the receiver buffered {backlog} bytes past its {limit} limit"
    );
    assert!(!sender.is_finished(), "the sender must be held back");

    // The application catches up: everything arrives, nobody was dropped.
    for _ in 0..n {
        assert_eq!(recv(&mut islow).await.payload.len(), 1024);
    }
    sender.await.expect("join");
    assert_eq!(fast.members().len(), 1);
    assert_eq!(slow.members().len(), 1);
}
