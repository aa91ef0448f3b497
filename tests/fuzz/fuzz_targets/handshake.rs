//! Drives a channel node (the sans-io `Node`) through one connection whose peer says
//! whatever the fuzzer wants: the frames are decoded from the input as a connection reader
//! does and handed to the node with the timers it would see. Byte 0 chooses the direction
//! (the peer dialed us, or we dialed it) and whether the target signs the peer's Hello /
//! HelloAck with the real cluster secret, so that the fuzzer also reaches what an
//! authenticated member may send (Data, Ack, Ping, Leave). The node must never panic, and a
//! peer whose proofs are not fixed up must never become a member (no way past the secret).
//! Run: `scripts/fuzz.sh 60 handshake` (docs/fuzzing.md).
#![no_main]
use libfuzzer_sys::fuzz_target;
use shoal_cluster::{
    Action, Body, ClusterSecret, ConnId, Direction, Envelope, InterceptorStack, Member, MemberId,
    Node, NodeConfig,
};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const SECRET: &[u8] = b"fuzz-cluster-secret";

fn local() -> Member {
    Member {
        id: MemberId([1; 16]),
        name: "node1".into(),
        addr: SocketAddr::from(([10, 0, 0, 1], 4000)),
        domain: "default".into(),
        incarnation: 1,
        meta: BTreeMap::new(),
    }
}

/// The nonces the fix-ups need: the challenge (the node's when the peer dialed, the peer's
/// when the node dialed) and the nonce of the node's Hello.
#[derive(Default)]
struct Heard {
    challenge: Option<[u8; 16]>,
    hello_nonce: Option<[u8; 16]>,
    closed: bool,
}

fn drain(node: &mut Node, conn: ConnId, heard: &mut Heard) {
    while let Some(a) = node.poll_action() {
        match a {
            Action::Send { conn: c, bytes } if c == conn => {
                let mut rest = &bytes[..];
                while let Ok(Some((env, n))) = node.codec().decode(rest) {
                    match env.body {
                        Body::Challenge { nonce } => heard.challenge = Some(nonce),
                        Body::Hello { nonce, .. } => heard.hello_nonce = Some(nonce),
                        _ => {}
                    }
                    rest = &rest[n..];
                }
                assert!(rest.is_empty(), "the node wrote a frame it cannot decode");
            }
            Action::Close { conn: c, .. } if c == conn => heard.closed = true,
            _ => {}
        }
    }
    while node.poll_event().is_some() {}
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, stream)) = data.split_first() else {
        return;
    };
    let inbound = mode & 1 == 0;
    let fix_proofs = mode & 2 != 0;
    let secret = ClusterSecret::new(SECRET.to_vec());
    let cfg = NodeConfig {
        secret: secret.clone(),
        max_frame: 64 * 1024,
        ..NodeConfig::default()
    };
    let mut now = Instant::now();
    let mut node = Node::new(local(), cfg, InterceptorStack::new(), 7, now);
    let peer = SocketAddr::from(([10, 0, 0, 2], 4000));
    let mut heard = Heard::default();
    let conn = if inbound {
        let conn = ConnId::inbound(1);
        node.handle_connected(now, conn, Direction::Inbound, peer);
        conn
    } else {
        node.handle_candidate(now, peer);
        let mut dialed = None;
        while let Some(a) = node.poll_action() {
            if let Action::Connect { conn, .. } = a {
                dialed = Some(conn);
            }
        }
        let Some(conn) = dialed else {
            panic!("a candidate address is dialed at once");
        };
        node.handle_connected(now, conn, Direction::Outbound, peer);
        conn
    };
    drain(&mut node, conn, &mut heard);
    let codec = node.codec().clone();
    let mut rest = stream;
    loop {
        match codec.decode(rest) {
            Ok(Some((mut env, n))) => {
                rest = &rest[n..];
                if let (false, Body::Challenge { nonce }) = (inbound, &env.body) {
                    // We dialed: the challenge our Hello must answer is the peer's.
                    heard.challenge = Some(*nonce);
                }
                if fix_proofs {
                    fix_up(&mut env, &secret, &heard);
                }
                node.handle_frame(now, conn, env);
            }
            Ok(None) => break,
            Err(e) => {
                node.handle_disconnected(now, conn, e.to_string());
                break;
            }
        }
        // Time passes between frames (the first byte after each frame says how much), so
        // the failure detector and the handshake timeout run on what the peer left behind.
        if let Some((&step, tail)) = rest.split_first() {
            now += Duration::from_millis(u64::from(step) * 8);
            node.handle_timeout(now);
            rest = tail;
        }
        drain(&mut node, conn, &mut heard);
        if heard.closed {
            break;
        }
    }
    drain(&mut node, conn, &mut heard);
    if !fix_proofs {
        assert!(
            node.members().is_empty(),
            "a peer without the cluster secret became a member"
        );
    }
});

/// Signs the peer's handshake frame with the real secret over the nonces the node sent.
fn fix_up(env: &mut Envelope, secret: &ClusterSecret, heard: &Heard) {
    match &mut env.body {
        Body::Hello {
            member,
            nonce,
            proof,
        } => {
            if let Some(challenge) = heard.challenge {
                *proof = secret.hello_proof(&challenge, nonce, member);
            }
        }
        Body::HelloAck { member, proof } => {
            // The node dialed: over the peer's challenge and the node's Hello nonce.
            if let (Some(challenge), Some(nonce)) = (heard.challenge, heard.hello_nonce) {
                *proof = secret.ack_proof(&challenge, &nonce, member);
            }
        }
        _ => {}
    }
}
