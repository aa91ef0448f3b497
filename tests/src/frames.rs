//! A raw cluster client over `std::net::TcpStream`, speaking (or abusing) the wire protocol:
//! used to send malformed frames and to attempt handshakes with a wrong secret.
use shoal_cluster::{
    Body, ClusterSecret, Envelope, FrameCodec, Member, MemberId, SendOptions, PROTOCOL_VERSION,
};
use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

pub struct RawClient {
    pub stream: TcpStream,
    buf: Vec<u8>,
    codec: FrameCodec,
}

pub fn fake_member(name: &str, port: u16) -> Member {
    Member {
        id: MemberId([0xEE; 16]),
        name: name.into(),
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        domain: "default".into(),
        incarnation: 1,
        meta: BTreeMap::new(),
    }
}

/// One encoded frame.
pub fn frame(env: &Envelope) -> Vec<u8> {
    let mut out = Vec::new();
    FrameCodec::default()
        .encode(env, &mut out)
        .expect("encode test frame");
    out
}

pub fn data_frame(sender: MemberId, id: u64, text: &str) -> Vec<u8> {
    frame(&Envelope {
        id,
        sender,
        body: Body::Data {
            options: SendOptions(SendOptions::USE_ACK),
            payload: text.as_bytes().to_vec(),
        },
    })
}

pub fn ping_frame(nonce: u64) -> Vec<u8> {
    frame(&Envelope {
        id: 0,
        sender: MemberId([0xEE; 16]),
        body: Body::Ping { nonce },
    })
}

/// The four kinds of bad input the receiver must survive.
pub fn bad_frames() -> Vec<(&'static str, Vec<u8>)> {
    let good = ping_frame(1);
    // Header claims a shorter body than the envelope needs: decode hits the end early.
    let mut truncated = good[..good.len() - 3].to_vec();
    let len = (truncated.len() - 4) as u32;
    truncated[..4].copy_from_slice(&len.to_be_bytes());
    let mut wrong_version = good.clone();
    wrong_version[4..6].copy_from_slice(&(PROTOCOL_VERSION + 1).to_be_bytes());
    let mut oversized = (64u32 * 1024 * 1024).to_be_bytes().to_vec();
    oversized.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
    oversized.extend_from_slice(&[0u8; 64]);
    let mut malformed = 12u32.to_be_bytes().to_vec();
    malformed.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
    malformed.extend_from_slice(&[0xff; 10]);
    vec![
        ("malformed", malformed),
        ("truncated", truncated),
        ("oversized", oversized),
        ("wrong-version", wrong_version),
    ]
}

impl RawClient {
    pub fn connect(port: u16) -> RawClient {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("raw connect");
        RawClient {
            stream,
            buf: Vec::new(),
            codec: FrameCodec::default(),
        }
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.stream.local_addr().expect("local addr")
    }

    pub fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Next frame within `within`; `None` on timeout or when the node closed the connection.
    pub fn read_frame(&mut self, within: Duration) -> Option<Envelope> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some((env, n))) = self.codec.decode(&self.buf) {
                self.buf.drain(..n);
                return Some(env);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            self.stream
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .ok()?;
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(_) => return None,
            }
        }
    }

    /// True when the node closes the connection (EOF or reset) within `within`.
    pub fn closed_within(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        let mut chunk = [0u8; 4096];
        loop {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            let _ = self
                .stream
                .set_read_timeout(Some(left.max(Duration::from_millis(1))));
            match self.stream.read(&mut chunk) {
                Ok(0) => return true,
                Ok(_) => continue, // e.g. the Challenge or a Refused: keep reading
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return false
                }
                Err(_) => return true, // reset
            }
        }
    }

    /// Reads the Challenge, answers with a Hello proven with `secret`; returns the reply.
    pub fn handshake(&mut self, me: &Member, secret: &str) -> Option<Body> {
        let challenge = match self.read_frame(Duration::from_secs(3))?.body {
            Body::Challenge { nonce } => nonce,
            _ => return None,
        };
        let nonce = [7u8; 16];
        let proof =
            ClusterSecret::new(secret.as_bytes().to_vec()).hello_proof(&challenge, &nonce, me);
        let hello = frame(&Envelope {
            id: 0,
            sender: me.id,
            body: Body::Hello {
                member: me.clone(),
                nonce,
                proof,
            },
        });
        self.write(&hello).ok()?;
        self.read_frame(Duration::from_secs(3)).map(|e| e.body)
    }

    /// The node is alive: a fresh connection gets its Challenge and a Ping gets a Pong.
    pub fn assert_node_answers(port: u16) {
        let mut c = RawClient::connect(port);
        let first = c
            .read_frame(Duration::from_secs(3))
            .expect("a challenge on a fresh connection");
        assert!(
            matches!(first.body, Body::Challenge { .. }),
            "first frame is a challenge: {first:?}"
        );
        c.write(&ping_frame(99)).expect("write ping");
        let pong = c.read_frame(Duration::from_secs(3)).expect("pong");
        assert!(matches!(pong.body, Body::Pong { nonce: 99 }), "{pong:?}");
    }
}
