//! `shoal bench-channel`: the channel's figures, printed as a table.
//!
//! Throughput and latency run 3 channels inside this process on 127.0.0.1 (real TCP sockets,
//! one tokio runtime shared by the three nodes, so the figures are for the whole cluster on
//! this machine). Detection spawns 3 real `shoal node` processes and kill -9s one of them.
use anyhow::{bail, Context, Result};
use shoal_cluster::{InterceptorStack, MemberId, SendOptions};
use shoal_net::{loopback_settings, Channel, Discovery, Incoming, StaticDiscovery};
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Messages per asynchronous throughput run (fewer for 10 KiB and the ack modes).
    #[arg(long, default_value_t = 200_000)]
    pub messages: usize,
    /// Round trips for the sync_ack latency figure.
    #[arg(long, default_value_t = 5_000)]
    pub round_trips: usize,
    /// kill -9 rounds for the detection figure (median reported).
    #[arg(long, default_value_t = 5)]
    pub kills: usize,
    /// Concurrent senders in the use_ack / sync_ack throughput runs.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// MessageDispatch queue of the sender, bytes (default: the config default, 64 MiB).
    #[arg(long)]
    pub queue_bytes: Option<usize>,
    #[arg(long)]
    pub skip_detection: bool,
}

const SECRET: &str = "bench-channel-secret";

pub async fn run(a: BenchArgs) -> Result<()> {
    // The sender listens on any free port; the peers dial it (static membership), which is
    // all the benchmark needs: it sends from the sender to both peers.
    let (s, _si) = start("sender", Vec::new(), a.queue_bytes).await?;
    let sender = vec![s.local().addr.to_string()];
    let (b, ib) = start("peer-b", sender.clone(), None).await?;
    let (c, ic) = start("peer-c", sender, None).await?;
    wait_members(&s, 2).await?;
    let dests = vec![b.local().id, c.local().id];
    let counters = [spawn_sink(ib), spawn_sink(ic)];
    println!(
        "channel throughput to 2 peers (3 nodes in one process, 127.0.0.1, {} cores)",
        cores()
    );
    println!(
        "{:<9} {:>7} {:>9} {:>8} {:>11} {:>9} {:>12}",
        "mode", "size", "messages", "secs", "msg/s", "MiB/s", "cpu us/msg"
    );
    for size in [100usize, 1024, 10 * 1024] {
        for (mode, bits) in [
            ("async", SendOptions::ASYNCHRONOUS),
            ("use_ack", SendOptions::USE_ACK),
            ("sync_ack", SendOptions::SYNCHRONIZED_ACK),
        ] {
            let mut n = a.messages.min(512 * 1024 * 1024 / size);
            if bits != SendOptions::ASYNCHRONOUS {
                n = (n / 4).max(a.concurrency);
            }
            let cpu0 = cpu_seconds();
            let secs = throughput(
                &s,
                &dests,
                &counters,
                size,
                n,
                SendOptions(bits),
                a.concurrency,
            )
            .await?;
            let cpu = (cpu_seconds() - cpu0) * 1e6 / n as f64;
            let rate = n as f64 / secs;
            println!(
                "{mode:<9} {size:>7} {n:>9} {secs:>8.3} {rate:>11.0} {:>9.1} {cpu:>12.2}",
                rate * size as f64 * 2.0 / (1024.0 * 1024.0)
            );
        }
    }
    latency(&s, b.local().id, a.round_trips).await;
    for ch in [&s, &b, &c] {
        ch.shutdown().await;
    }
    if !a.skip_detection {
        crate::bench_detect::detection(a.kills).await?;
    }
    Ok(())
}

/// CPU time (user + system) of this process so far, from /proc (0 where unavailable).
/// Divided by the messages sent it gives a cost per message that other load on the machine
/// does not distort (all three nodes run in this process).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the `(comm)`: state is field 3; utime and stime are fields 14 and 15.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

async fn start(
    name: &str,
    members: Vec<String>,
    queue: Option<usize>,
) -> Result<(Channel, Incoming)> {
    let mut settings = loopback_settings(name, SECRET, Vec::new());
    if let Some(q) = queue {
        settings.queue_bytes = q;
    }
    let d: Box<dyn Discovery> = Box::new(StaticDiscovery::new(members, Duration::from_millis(100)));
    let (ch, inc) = Channel::start_with(settings, InterceptorStack::default(), vec![d])
        .await
        .with_context(|| format!("start {name}"))?;
    Ok((ch, inc))
}

async fn wait_members(ch: &Channel, n: usize) -> Result<()> {
    let t = Instant::now();
    while ch.members().len() < n {
        if t.elapsed() > Duration::from_secs(10) {
            bail!("the bench cluster did not form within 10 s");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// Receives forever, completing sync_ack messages at once; counts messages.
fn spawn_sink(mut inc: Incoming) -> std::sync::Arc<std::sync::atomic::AtomicUsize> {
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        while let Some(m) = inc.recv().await {
            if let Some(done) = m.completion {
                done.complete();
            }
            c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
    count
}

type Counter = std::sync::Arc<std::sync::atomic::AtomicUsize>;

/// Sends `n` messages of `size` bytes to both peers; the clock stops when both received all.
async fn throughput(
    s: &Channel,
    dests: &[MemberId],
    sinks: &[Counter; 2],
    size: usize,
    n: usize,
    opts: SendOptions,
    concurrency: usize,
) -> Result<f64> {
    use std::sync::atomic::Ordering::Relaxed;
    let base: Vec<usize> = sinks.iter().map(|c| c.load(Relaxed)).collect();
    let t = Instant::now();
    let senders = if opts.has(SendOptions::ASYNCHRONOUS) {
        1
    } else {
        concurrency
    };
    let mut tasks = Vec::new();
    for k in 0..senders {
        let (s, dests) = (s.clone(), dests.to_vec());
        let count = n / senders + usize::from(k < n % senders);
        tasks.push(tokio::spawn(async move {
            let mut failed = 0usize;
            for _ in 0..count {
                if !s.send(&dests, vec![0x5a; size], opts).await.ok() {
                    failed += 1;
                }
            }
            failed
        }));
    }
    let mut failed = 0;
    for t in tasks {
        failed += t.await.unwrap_or(1);
    }
    if failed > 0 {
        bail!("{failed} sends failed during the {size} B run");
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while sinks
        .iter()
        .zip(&base)
        .any(|(c, b)| c.load(Relaxed) - b < n)
    {
        if Instant::now() > deadline {
            bail!("messages missing after 120 s in the {size} B run");
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    Ok(t.elapsed().as_secs_f64())
}

/// One sender, one destination, one message in flight: sync_ack round trip.
async fn latency(s: &Channel, dest: MemberId, n: usize) {
    let opts = SendOptions(SendOptions::SYNCHRONIZED_ACK);
    for _ in 0..n / 10 {
        s.send(&[dest], vec![1; 100], opts).await;
    }
    let mut us: Vec<u64> = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        s.send(&[dest], vec![1; 100], opts).await;
        us.push(t.elapsed().as_micros() as u64);
    }
    us.sort_unstable();
    let p = |q: f64| {
        us.get(((us.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or(0)
    };
    println!();
    println!(
        "sync_ack round trip, 100 B, 1 peer, unloaded ({n} sends): p50 {} us  p99 {} us  max {} us",
        p(0.5),
        p(0.99),
        p(1.0)
    );
}
