//! Interceptors inserted into, reordered in and removed from the stacks of two running
//! channels on loopback while messages flow: no message is lost or processed twice, and a
//! layer sees exactly the messages that went through the stack while it was in it.
use shoal_cluster::{
    ChannelMessage, Interceptor, InterceptorError, InterceptorStack, Member, SendOptions,
    StackError,
};
use shoal_net::{
    loopback_settings, Channel, Discovery, Incoming, MemoryDiscovery, MemoryNet, StackChangeError,
};
use shoal_testkit::eventually;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SECRET: &str = "live-stack-test-secret";

/// What a [`Recorder`] saw: message ids on send / receive, and members it was told about.
#[derive(Default)]
struct Seen {
    sent: Vec<u64>,
    received: Vec<u64>,
    members: Vec<String>,
}

/// Passes everything, recording what it saw.
struct Recorder {
    name: String,
    seen: Arc<Mutex<Seen>>,
}

impl Recorder {
    fn boxed(name: &str) -> (Box<dyn Interceptor>, Arc<Mutex<Seen>>) {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let layer = Recorder {
            name: name.into(),
            seen: seen.clone(),
        };
        (Box::new(layer), seen)
    }
}

impl Interceptor for Recorder {
    fn name(&self) -> &str {
        &self.name
    }
    fn on_send(
        &mut self,
        _: Instant,
        msg: ChannelMessage,
        out: &mut Vec<ChannelMessage>,
    ) -> Result<(), InterceptorError> {
        self.seen.lock().expect("lock").sent.push(msg.id);
        out.push(msg);
        Ok(())
    }
    fn on_receive(
        &mut self,
        _: Instant,
        msg: ChannelMessage,
        out: &mut Vec<ChannelMessage>,
    ) -> Result<(), InterceptorError> {
        self.seen.lock().expect("lock").received.push(msg.id);
        out.push(msg);
        Ok(())
    }
    fn member_added(&mut self, _: Instant, member: &Member) {
        self.seen
            .lock()
            .expect("lock")
            .members
            .push(member.name.clone());
    }
}

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
    eventually("the members", Duration::from_secs(5), || {
        ch.members().len() == n
    })
    .await;
}

async fn names(ch: &Channel) -> Vec<String> {
    ch.interceptors()
        .await
        .into_iter()
        .map(|l| l.name)
        .collect()
}

/// Ids of `seen` form one gap-free run without repeats: the layer saw every message that
/// crossed the stack while it was in it, each once.
fn contiguous(ids: &[u64]) -> bool {
    ids.windows(2).all(|w| w[1] == w[0] + 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layers_join_and_leave_live_stacks_between_messages() {
    let net = MemoryNet::default();
    let (a, _ia) = start("a", &net).await;
    let (b, mut ib) = start("b", &net).await;
    wait_members(&a, 1).await;
    wait_members(&b, 1).await;
    let to_b = vec![b.local().id];

    // A steady stream a → b until told to stop; b's application records what reaches it.
    let stop = Arc::new(AtomicBool::new(false));
    let sender = tokio::spawn({
        let (a, to_b, stop) = (a.clone(), to_b.clone(), stop.clone());
        async move {
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let opts = SendOptions(SendOptions::USE_ACK);
                let r = a.send(&to_b, i.to_be_bytes().to_vec(), opts).await;
                assert!(r.ok(), "send {i}: {r}");
                i += 1;
            }
            i
        }
    });
    let got = Arc::new(Mutex::new(Vec::<Vec<u8>>::new()));
    tokio::spawn({
        let got = got.clone();
        async move {
            while let Some(m) = ib.recv().await {
                got.lock().expect("lock").push(m.payload);
            }
        }
    });
    let received = || got.lock().expect("lock").len();
    eventually("the stream to start", Duration::from_secs(10), || {
        received() >= 20
    })
    .await;

    // Join both stacks while the stream runs: a's at the bottom, b's at the top.
    let (layer_a, seen_a) = Recorder::boxed("rec");
    let (layer_b, seen_b) = Recorder::boxed("rec");
    a.insert_interceptor(None, layer_a)
        .await
        .expect("insert on a");
    b.insert_interceptor(Some(0), layer_b)
        .await
        .expect("insert on b");
    assert_eq!(names(&a).await, ["rec"]);
    assert_eq!(
        seen_a.lock().expect("lock").members,
        ["b"],
        "told about the current members"
    );

    // A second layer, a duplicate name, a reorder, and a bad reorder.
    let (second, _) = Recorder::boxed("rec2");
    a.insert_interceptor(None, second)
        .await
        .expect("insert rec2");
    let (dup, _) = Recorder::boxed("rec");
    assert_eq!(
        a.insert_interceptor(None, dup).await,
        Err(StackChangeError::Stack(StackError::Duplicate("rec".into())))
    );
    a.reorder_interceptors(&["rec2", "rec"])
        .await
        .expect("reorder");
    assert_eq!(names(&a).await, ["rec2", "rec"]);
    assert!(a.reorder_interceptors(&["nope"]).await.is_err());

    // Let some messages cross the new layers, then take them out while the stream runs.
    eventually(
        "messages to cross the layer",
        Duration::from_secs(10),
        || seen_b.lock().expect("lock").received.len() >= 50,
    )
    .await;
    a.remove_interceptor("rec").await.expect("remove on a");
    a.remove_interceptor("rec2")
        .await
        .expect("remove rec2 on a");
    b.remove_interceptor("rec").await.expect("remove on b");
    assert_eq!(
        b.remove_interceptor("rec").await,
        Err(StackChangeError::Stack(StackError::NotFound("rec".into())))
    );
    assert!(names(&a).await.is_empty() && names(&b).await.is_empty());
    let after = received();
    eventually(
        "the stream to go on without the layers",
        Duration::from_secs(10),
        || received() >= after + 20,
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    let total = sender.await.expect("sender") as usize;

    // Every message reached b's application exactly once, in order.
    eventually("every message to arrive", Duration::from_secs(10), || {
        received() >= total
    })
    .await;
    let got = got.lock().expect("lock");
    assert_eq!(got.len(), total, "no message delivered twice");
    for (i, payload) in got.iter().enumerate() {
        assert_eq!(payload[..], (i as u32).to_be_bytes(), "message {i}");
    }
    let (sa, sb) = (seen_a.lock().expect("lock"), seen_b.lock().expect("lock"));
    assert!(
        !sa.sent.is_empty() && contiguous(&sa.sent),
        "a: {:?}",
        sa.sent
    );
    assert!(
        sb.received.len() >= 50 && contiguous(&sb.received),
        "b: {:?}",
        sb.received
    );
    assert!(
        sa.sent.len() < total && sb.received.len() < total,
        "the layers saw only the middle of the stream (a {}, b {}, total {total})",
        sa.sent.len(),
        sb.received.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_channel_refuses_stack_changes() {
    let net = MemoryNet::default();
    let (a, _ia) = start("solo", &net).await;
    a.shutdown().await;
    let (layer, _) = Recorder::boxed("rec");
    assert_eq!(
        a.insert_interceptor(None, layer).await,
        Err(StackChangeError::Closed)
    );
}
