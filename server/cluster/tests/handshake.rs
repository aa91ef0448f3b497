//! Authenticated handshake: join with the secret, refusal without it, no traffic before it.
use shoal_cluster::sim::Sim;
use shoal_cluster::{
    Action, Body, ClusterSecret, ConnId, Direction, Envelope, Event, InterceptorStack, Member,
    MemberId, Node, NodeConfig, SendOptions,
};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn added(sim: &Sim, i: usize) -> usize {
    sim.nodes[i]
        .log
        .iter()
        .filter(|(_, e)| matches!(e, Event::MemberAdded(_)))
        .count()
}

fn refusals(sim: &Sim, i: usize) -> Vec<String> {
    sim.nodes[i]
        .log
        .iter()
        .filter_map(|(_, e)| match e {
            Event::HandshakeFailed { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn three_nodes_join_with_the_secret() {
    let mut sim = Sim::cluster(1, 3);
    assert!(
        sim.run_until(Duration::from_secs(2), |s| s.fully_connected()),
        "views: {:?}",
        (0..3).map(|i| sim.view(i)).collect::<Vec<_>>()
    );
    for i in 0..3 {
        assert_eq!(added(&sim, i), 2, "node{} adds each peer once", i + 1);
    }
    // Stays stable: no suspicion, no drop, exactly one connection per pair.
    sim.run_for(Duration::from_secs(5));
    for i in 0..3 {
        assert_eq!(added(&sim, i), 2);
        let drops = sim.nodes[i]
            .log
            .iter()
            .filter(|(_, e)| {
                matches!(
                    e,
                    Event::MemberDisappeared { .. } | Event::MemberSuspected { .. }
                )
            })
            .count();
        assert_eq!(drops, 0, "node{} log: {:?}", i + 1, sim.nodes[i].log);
        let n = sim.node(i).expect("up");
        assert_eq!(
            n.node_stats().connections_open,
            2,
            "one connection per peer pair"
        );
    }
}

#[test]
fn wrong_secret_is_refused_on_both_sides() {
    let mut sim = Sim::new(2);
    sim.add_node("node1");
    let bad = NodeConfig::new(ClusterSecret::new(b"not-the-secret".to_vec()), "sim");
    sim.add_node_with("intruder", Some(bad));
    sim.run_for(Duration::from_secs(3));
    assert_eq!(added(&sim, 0), 0, "node1 must not add the intruder");
    assert_eq!(added(&sim, 1), 0, "the intruder must not add node1");
    let r0 = refusals(&sim, 0);
    let r1 = refusals(&sim, 1);
    assert!(
        r0.iter().any(|r| r.contains("cluster secret")),
        "node1 reasons: {r0:?}"
    );
    assert!(
        r1.iter().any(|r| r.contains("cluster secret")),
        "intruder reasons: {r1:?}"
    );
    // The intruder cannot send either: node1 is not its member.
    let id = sim
        .send(1, &[0], b"evil".to_vec(), SendOptions(SendOptions::USE_ACK))
        .expect("up");
    let out = &sim.nodes[1].outcomes[&id];
    assert!(
        matches!(&out[0].1, shoal_cluster::DeliveryStatus::Failed(r) if r.contains("not a member")),
        "{out:?}"
    );
    assert!(sim.nodes[0].received.is_empty());
}

#[test]
fn other_domain_is_refused() {
    let mut sim = Sim::new(3);
    sim.add_node("node1");
    let other = NodeConfig::new(ClusterSecret::new(b"sim-secret".to_vec()), "elsewhere");
    sim.add_node_with("node2", Some(other));
    sim.run_for(Duration::from_secs(2));
    assert_eq!(added(&sim, 0) + added(&sim, 1), 0);
    assert!(refusals(&sim, 0)
        .iter()
        .chain(refusals(&sim, 1).iter())
        .any(|r| r.contains("domain")));
}

fn member(b: u8) -> Member {
    Member {
        id: MemberId([b; 16]),
        name: format!("n{b}"),
        addr: ([127, 0, 0, 1], 4000 + b as u16).into(),
        domain: "default".into(),
        incarnation: 1,
        meta: BTreeMap::new(),
    }
}

#[test]
fn data_before_handshake_closes_the_connection() {
    let now = Instant::now();
    let cfg = NodeConfig::new(ClusterSecret::new(b"s".to_vec()), "default");
    let mut node = Node::new(member(1), cfg, InterceptorStack::new(), 7, now);
    let conn = ConnId::inbound(1);
    node.handle_connected(now, conn, Direction::Inbound, ([127, 0, 0, 1], 5555).into());
    let first = node.poll_action();
    assert!(
        matches!(first, Some(Action::Send { .. })),
        "acceptor sends its challenge first: {first:?}"
    );
    let env = Envelope {
        id: 1,
        sender: MemberId([9; 16]),
        body: Body::Data {
            options: SendOptions::default(),
            payload: b"inject".to_vec(),
        },
    };
    node.handle_frame(now, conn, env);
    let mut closed = None;
    while let Some(a) = node.poll_action() {
        if let Action::Close { conn: c, reason } = a {
            closed = Some((c, reason));
        }
    }
    let (c, reason) = closed.expect("connection closed");
    assert_eq!(c, conn);
    assert!(reason.contains("not authenticated"), "{reason}");
    let mut received = false;
    while let Some(e) = node.poll_event() {
        received |= matches!(e, Event::Received { .. } | Event::MemberAdded(_));
    }
    assert!(!received, "nothing delivered, nobody added");
}

/// Takes what `from` wrote: decoded frames and close reasons.
fn outgoing(from: &mut Node, closes: &mut Vec<String>) -> Vec<Envelope> {
    let codec = shoal_cluster::FrameCodec::default();
    let mut frames = Vec::new();
    while let Some(act) = from.poll_action() {
        match act {
            Action::Send { bytes, .. } => {
                let mut rest = &bytes[..];
                while let Ok(Some((env, n))) = codec.decode(rest) {
                    frames.push(env);
                    rest = &rest[n..];
                }
            }
            Action::Close { reason, .. } => closes.push(reason),
            _ => {}
        }
    }
    frames
}

/// Pumps frames between two nodes joined by one connection until both are quiet.
fn pump(a: &mut Node, ca: ConnId, b: &mut Node, cb: ConnId, now: Instant) -> Vec<String> {
    let mut closes = Vec::new();
    loop {
        let to_b = outgoing(a, &mut closes);
        let to_a = outgoing(b, &mut closes);
        if to_a.is_empty() && to_b.is_empty() {
            return closes;
        }
        for env in to_b {
            b.handle_frame(now, cb, env);
        }
        for env in to_a {
            a.handle_frame(now, ca, env);
        }
    }
}

#[test]
fn open_connection_refuses_frames_from_another_sender() {
    let now = Instant::now();
    let cfg = || NodeConfig::new(ClusterSecret::new(b"s".to_vec()), "default");
    let mut a = Node::new(member(1), cfg(), InterceptorStack::new(), 1, now);
    let mut b = Node::new(member(2), cfg(), InterceptorStack::new(), 2, now);
    a.handle_candidate(now, member(2).addr);
    let Some(Action::Connect { conn: ca, .. }) = a.poll_action() else {
        panic!("a dials b")
    };
    let cb = ConnId::inbound(1);
    a.handle_connected(now, ca, Direction::Outbound, member(2).addr);
    b.handle_connected(now, cb, Direction::Inbound, member(1).addr);
    assert!(pump(&mut a, ca, &mut b, cb, now).is_empty());
    assert_eq!(a.members().len(), 1);
    assert_eq!(b.members().len(), 1);
    while b.poll_event().is_some() {}
    let spoof = Envelope {
        id: 5,
        sender: MemberId([3; 16]),
        body: Body::Data {
            options: SendOptions::default(),
            payload: b"x".to_vec(),
        },
    };
    b.handle_frame(now, cb, spoof);
    let mut closed = false;
    while let Some(act) = b.poll_action() {
        closed |= matches!(act, Action::Close { conn, .. } if conn == cb);
    }
    assert!(
        closed,
        "a frame claiming another sender closes the connection"
    );
    while let Some(e) = b.poll_event() {
        assert!(!matches!(e, Event::Received { .. }), "nothing delivered");
    }
}

#[test]
fn node_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<Node>();
}

#[test]
fn own_alias_address_is_dialed_once_then_ignored() {
    let now = Instant::now();
    let cfg = NodeConfig::new(ClusterSecret::new(b"s".to_vec()), "default");
    let me = member(1);
    let mut node = Node::new(me.clone(), cfg, InterceptorStack::new(), 1, now);
    let alias: std::net::SocketAddr = ([10, 1, 1, 1], me.addr.port()).into();
    node.handle_candidate(now, alias);
    let Some(Action::Connect { conn: out, .. }) = node.poll_action() else {
        panic!("dials the candidate")
    };
    // The io layer connects it to our own listener: both ends live in this node.
    let inb = ConnId::inbound(1);
    node.handle_connected(now, out, Direction::Outbound, alias);
    node.handle_connected(now, inb, Direction::Inbound, alias);
    let mut closes = Vec::new();
    let frames = outgoing(&mut node, &mut closes);
    for env in frames {
        node.handle_frame(now, out, env);
    }
    outgoing(&mut node, &mut closes);
    assert!(closes.iter().any(|r| r.contains("itself")), "{closes:?}");
    let mut failed = 0;
    while let Some(e) = node.poll_event() {
        failed += matches!(e, Event::HandshakeFailed { .. }) as usize;
    }
    assert_eq!(failed, 0, "no error event for a self connection");
    for k in 1..20u64 {
        let t = now + std::time::Duration::from_millis(500 * k);
        node.handle_candidate(t, alias);
        node.handle_timeout(t);
        while let Some(a) = node.poll_action() {
            assert!(
                !matches!(a, Action::Connect { .. }),
                "never dials its own alias again"
            );
        }
    }
}
