//! Nodes in network namespaces of their own, so a test can fail the network *between* live
//! nodes (issue #12): cut any link in one or both directions, isolate a node, drop a share
//! of packets, and heal.
//!
//! Layout of a [`Lab`] of `n` nodes (`k` is the lab's number, unique on the host):
//! - namespace `shoal<k>` holds a bridge; namespace `shoal<k>n<i>` holds node `i` with
//!   address `10.77.<k>.<i+1>/24` on a veth whose other end is on the bridge;
//! - the test process (the host namespace) reaches every node at its address through one
//!   more veth on the bridge (`10.77.<k>.254`): cuts never touch the test's own traffic;
//! - faults are nftables rules in a node's namespace (table `inet shoal`, chains `in` and
//!   `out`): a cut drops what a node sends to (or receives from) a peer's address; loss
//!   drops that share of the node's cluster packets (`numgen random`).
//!
//! What the kernel here lacks: `tc netem` (`Specified qdisc kind is unknown`), so delay,
//! jitter and reordering go through a proxy: [`Lab::proxy_links`] starts one
//! [`FaultProxy`] per directed link (i → j) in the test process, on the test's address, and
//! an nftables DNAT rule in node i's namespace sends its connections to j's cluster port
//! there. Nodes still dial and advertise the real addresses (membership, the failure
//! detector's probes and the handshake see no difference); j sees them come from the test's
//! address. A connection i opened to j carries both directions of bytes through link
//! (i → j); [`Lab::delay`] sets one link, [`Lab::delay_all`] every link.
//!
//! Needs root (CI runs as root), `ip` and `nft` (scripts/prereqs.sh installs nftables); a
//! missing one fails the test with the reason. [`Lab`]'s drop removes every namespace and
//! veth it made, also when the test panics; a lab left behind by a killed test process is
//! removed by the next one that picks its number.
use crate::fault_proxy::FaultProxy;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::Duration;

/// Runs `args` (a whole command line), panicking with its stderr when it fails.
fn run(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `{}`: {e} (needs iproute2 and nftables, as root)",
                args.join(" ")
            )
        });
    assert!(
        out.status.success(),
        "`{}` failed ({}): {} (the fault harness needs root, iproute2 and nftables)",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

/// Where a lab records the process that owns it (to remove labs of dead processes).
fn owner_file(k: u8) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("shoal-lab-{k}.pid"))
}

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Namespaces of lab `k`.
fn lab_namespaces(k: u8) -> Vec<String> {
    let out = Command::new("ip").args(["netns", "list"]).output();
    let text = out
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let hub = format!("shoal{k}");
    let node = format!("shoal{k}n");
    text.lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| {
            *n == hub
                || n.strip_prefix(&node)
                    .is_some_and(|r| r.parse::<u32>().is_ok())
        })
        .map(str::to_owned)
        .collect()
}

fn remove_lab(k: u8) {
    // Deleting a namespace deletes the veth ends in it, and with them their peers.
    for ns in lab_namespaces(k) {
        let _ = Command::new("ip").args(["netns", "del", &ns]).output();
    }
    let _ = Command::new("ip")
        .args(["link", "del", &format!("s{k}h")])
        .output();
    let _ = std::fs::remove_file(owner_file(k));
}

/// A set of namespaces with one node's address each, joined by a bridge.
pub struct Lab {
    k: u8,
    n: usize,
    /// One proxy per directed link, `from * n + to` (none to itself), once proxied.
    links: Vec<Option<FaultProxy>>,
}

impl Lab {
    /// A lab for `n` nodes (at most 200).
    pub fn new(n: usize) -> Lab {
        assert!((1..=200).contains(&n), "a lab has 1..=200 nodes");
        let k = Self::claim();
        let lab = Lab {
            k,
            n,
            links: Vec::new(),
        };
        let hub = lab.hub();
        run(&["ip", "netns", "exec", &hub, "ip", "link", "set", "lo", "up"]);
        run(&[
            "ip", "netns", "exec", &hub, "ip", "link", "add", "br0", "type", "bridge",
        ]);
        run(&[
            "ip", "netns", "exec", &hub, "ip", "link", "set", "br0", "up",
        ]);
        // The test's own way in.
        let (h, hb) = (format!("s{k}h"), format!("s{k}hb"));
        run(&["ip", "link", "add", &h, "type", "veth", "peer", "name", &hb]);
        run(&["ip", "link", "set", &hb, "netns", &hub]);
        run(&["ip", "addr", "add", &format!("10.77.{k}.254/24"), "dev", &h]);
        run(&["ip", "link", "set", &h, "up"]);
        run(&[
            "ip", "netns", "exec", &hub, "ip", "link", "set", &hb, "master", "br0",
        ]);
        run(&["ip", "netns", "exec", &hub, "ip", "link", "set", &hb, "up"]);
        for i in 0..n {
            let ns = lab.ns(i);
            let (eth, br) = (format!("s{k}n{i}"), format!("s{k}b{i}"));
            run(&["ip", "netns", "add", &ns]);
            run(&[
                "ip", "link", "add", &eth, "type", "veth", "peer", "name", &br,
            ]);
            run(&["ip", "link", "set", &eth, "netns", &ns]);
            run(&["ip", "link", "set", &br, "netns", &hub]);
            run(&[
                "ip", "netns", "exec", &hub, "ip", "link", "set", &br, "master", "br0",
            ]);
            run(&["ip", "netns", "exec", &hub, "ip", "link", "set", &br, "up"]);
            let addr = format!("{}/24", lab.ip(i));
            run(&["ip", "netns", "exec", &ns, "ip", "link", "set", "lo", "up"]);
            run(&[
                "ip", "netns", "exec", &ns, "ip", "addr", "add", &addr, "dev", &eth,
            ]);
            run(&["ip", "netns", "exec", &ns, "ip", "link", "set", &eth, "up"]);
            let rules = "add table inet shoal\n\
                 add chain inet shoal in { type filter hook input priority 0; }\n\
                 add chain inet shoal out { type filter hook output priority 0; }\n";
            lab.nft(i, rules);
        }
        lab
    }

    /// A free lab number, taken by creating its hub namespace (fails if it exists); a lab
    /// whose owner died is removed and its number reused.
    fn claim() -> u8 {
        for k in 1..=250u8 {
            let owner = std::fs::read_to_string(owner_file(k))
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok());
            if owner.is_some_and(|pid| !alive(pid)) {
                remove_lab(k);
            }
            let made = Command::new("ip")
                .args(["netns", "add", &format!("shoal{k}")])
                .output();
            match made {
                Ok(o) if o.status.success() => {
                    let _ = std::fs::write(owner_file(k), std::process::id().to_string());
                    return k;
                }
                Ok(o) if String::from_utf8_lossy(&o.stderr).contains("exists") => continue,
                Ok(o) => panic!(
                    "`ip netns add shoal{k}` failed: {} (the fault harness needs root)",
                    String::from_utf8_lossy(&o.stderr).trim()
                ),
                Err(e) => panic!("cannot run `ip` ({e}): install iproute2"),
            }
        }
        panic!("no free lab number in 1..=250: remove stale namespaces with `ip netns list`")
    }

    fn hub(&self) -> String {
        format!("shoal{}", self.k)
    }

    /// The namespace of node `i`.
    pub fn ns(&self, i: usize) -> String {
        format!("shoal{}n{i}", self.k)
    }

    /// The address of node `i`.
    pub fn ip(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, self.k, i as u8 + 1)
    }

    /// How many nodes the lab has.
    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Feeds `script` to `nft -f -` in node `i`'s namespace.
    fn nft(&self, i: usize, script: &str) {
        use std::io::Write;
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.ns(i), "nft", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run nft in {}: {e} (apt-get install nftables)",
                    self.ns(i)
                )
            });
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(script.as_bytes())
                .unwrap_or_else(|e| panic!("nft script to {}: {e}", self.ns(i)));
        }
        let out = child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("nft in {}: {e}", self.ns(i)));
        assert!(
            out.status.success(),
            "nft in {} failed: {}\nscript:\n{script}",
            self.ns(i),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }

    /// Drops what node `from` sends to node `to` (one direction: `to` still reaches `from`,
    /// though a TCP connection needs both). With [`Lab::proxy_links`], the proxy of link
    /// `from` → `to` is cut too (both directions of `from`'s connections to `to`): the
    /// packets of proxied connections no longer carry `to`'s address.
    pub fn cut(&self, from: usize, to: usize) {
        self.nft(
            from,
            &format!("add rule inet shoal out ip daddr {} drop\n", self.ip(to)),
        );
        if !self.links.is_empty() {
            self.link(from, to).cut();
        }
    }

    /// Cuts the link between `a` and `b` both ways.
    pub fn cut_both(&self, a: usize, b: usize) {
        self.cut(a, b);
        self.cut(b, a);
    }

    /// Cuts node `i` off from every other node, both ways (the test still reaches it).
    pub fn isolate(&self, i: usize) {
        for j in (0..self.n).filter(|&j| j != i) {
            self.cut_both(i, j);
        }
    }

    /// Splits the nodes into `side` and the rest, both ways.
    pub fn partition(&self, side: &[usize]) {
        for &a in side {
            for b in (0..self.n).filter(|b| !side.contains(b)) {
                self.cut_both(a, b);
            }
        }
    }

    /// Drops `percent` % of what node `i` sends to the other nodes, at random. With
    /// [`Lab::proxy_links`], also of what it sends through the proxies (its connections to
    /// them and its answers to theirs), not of what it answers the test.
    pub fn loss(&self, i: usize, percent: u8) {
        assert!(percent <= 100);
        let k = self.k;
        let mut rules = format!(
            "add rule inet shoal out ip daddr 10.77.{k}.0/24 ip daddr != 10.77.{k}.254 \
             numgen random mod 100 < {percent} drop\n"
        );
        if let Some(port) = self.proxied_port() {
            let ports: Vec<String> = (0..self.n)
                .filter(|&j| j != i)
                .map(|j| self.link(i, j).addr().port().to_string())
                .collect();
            rules.push_str(&format!(
                "add rule inet shoal out ip daddr 10.77.{k}.254 tcp dport {{ {} }} \
                 numgen random mod 100 < {percent} drop\n\
                 add rule inet shoal out ip daddr 10.77.{k}.254 tcp sport {port} \
                 numgen random mod 100 < {percent} drop\n",
                ports.join(", ")
            ));
        }
        self.nft(i, &rules);
    }

    /// Sends every connection node `i` opens to node `j`'s cluster `port` through a
    /// [`FaultProxy`] of its own (see the module doc). Call it before the nodes start, so
    /// that no connection bypasses the proxies.
    pub fn proxy_links(&mut self, port: u16) {
        assert!(self.links.is_empty(), "the links are proxied already");
        let host = Ipv4Addr::new(10, 77, self.k, 254);
        for from in 0..self.n {
            let mut rules = String::from(
                "add table ip shoalnat\n\
                 add chain ip shoalnat out { type nat hook output priority -100; }\n",
            );
            for to in 0..self.n {
                if from == to {
                    self.links.push(None);
                    continue;
                }
                let p = FaultProxy::start(
                    SocketAddr::from((host, 0)),
                    SocketAddr::from((self.ip(to), port)),
                );
                rules.push_str(&format!(
                    "add rule ip shoalnat out ip daddr {} tcp dport {port} dnat to {}\n",
                    self.ip(to),
                    p.addr()
                ));
                self.links.push(Some(p));
            }
            self.nft(from, &rules);
        }
    }

    /// The cluster port the links are proxied for, once [`Lab::proxy_links`] ran.
    fn proxied_port(&self) -> Option<u16> {
        self.links
            .iter()
            .flatten()
            .next()
            .map(|p| p.upstream().port())
    }

    /// The proxy of link `from` → `to` ([`Lab::proxy_links`] first).
    pub fn link(&self, from: usize, to: usize) -> &FaultProxy {
        assert!(
            from != to && from < self.n && to < self.n,
            "no link {from} -> {to}"
        );
        self.links
            .get(from * self.n + to)
            .and_then(Option::as_ref)
            .unwrap_or_else(|| panic!("link {from} -> {to} is not proxied: call proxy_links first"))
    }

    /// Delays every chunk on link `from` → `to` (both directions of its connections) by
    /// `delay ± jitter`.
    pub fn delay(&self, from: usize, to: usize, delay: Duration, jitter: Duration) {
        self.link(from, to).set_delay(delay, jitter);
    }

    /// [`Lab::delay`] on every link.
    pub fn delay_all(&self, delay: Duration, jitter: Duration) {
        for p in self.links.iter().flatten() {
            p.set_delay(delay, jitter);
        }
    }

    /// Removes every fault of node `i`.
    pub fn heal_node(&self, i: usize) {
        self.nft(i, "flush chain inet shoal in\nflush chain inet shoal out\n");
    }

    /// Removes every fault (the proxies' cuts included; their delays stay).
    pub fn heal(&self) {
        for i in 0..self.n {
            self.heal_node(i);
        }
        for p in self.links.iter().flatten() {
            p.heal();
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        remove_lab(self.k);
    }
}
