//! Tomcat's elements and attributes → shoal's keys (README, "Configuration", has the table).
//!
//! Where Tomcat and shoal mean the same thing the value is copied; where shoal has a
//! different model the key gets a `CHANGED:` note; what shoal does not have is listed with
//! the reason. Tomcat's defaults are written out where they differ from shoal's (a bare
//! `<Cluster/>` is asynchronous multicast, shoal's bare node is synchronous and static), so
//! the imported file behaves like the Tomcat one.
use super::toml_out::Out;
use roxmltree::{Document, Node};

/// What the import made: the file and the warnings (unknown class names).
pub struct Imported {
    out: Out,
    pub warnings: Vec<String>,
}

impl Imported {
    pub fn render(&self) -> String {
        self.out.render()
    }
}

/// The last segment of a class name: `org.apache.catalina.ha.tcp.SimpleTcpCluster` → `SimpleTcpCluster`.
fn class_of<'a>(n: Node<'a, '_>) -> &'a str {
    let c = n.attribute("className").unwrap_or("");
    c.rsplit('.').next().unwrap_or(c)
}

/// `<Tag attr>` for notes.
fn at(n: Node, attr: &str) -> String {
    format!("<{} {attr}>", n.tag_name().name())
}

fn elements<'a, 'i>(doc: &'a Document<'i>, tag: &'a str) -> impl Iterator<Item = Node<'a, 'i>> {
    doc.descendants()
        .filter(move |n| n.is_element() && n.tag_name().name() == tag)
}

fn has_ancestor(n: Node, tag: &str) -> bool {
    n.ancestors()
        .skip(1)
        .any(|a| a.is_element() && a.tag_name().name() == tag)
}

fn int(n: Node, attr: &str, out: &mut Out) -> Option<i64> {
    let v = n.attribute(attr)?;
    match v.trim().parse::<i64>() {
        Ok(i) => Some(i),
        Err(_) => {
            out.warn(format!("{} = {v:?} is not a number; left out", at(n, attr)));
            None
        }
    }
}

/// The integer `attr` of `n`, if present, as `path.key` (its comment names the attribute).
fn int_to(n: Node, attr: &str, path: &str, key: &str, changed: Option<&str>, out: &mut Out) {
    int_at_least(n, attr, path, key, i64::MIN, changed, out);
}

/// [`int_to`] with the value raised to at least `min`.
fn int_at_least(
    n: Node,
    attr: &str,
    path: &str,
    key: &str,
    min: i64,
    changed: Option<&str>,
    out: &mut Out,
) {
    if let Some(v) = int(n, attr, out) {
        out.set(path, key, v.max(min), &at(n, attr), changed);
    }
}

fn boolean(n: Node, attr: &str) -> Option<bool> {
    n.attribute(attr)
        .map(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// Every attribute of `n` that the mapping did not take, listed as having no equivalent.
fn rest(n: Node, taken: &[&str], why: &str, out: &mut Out) {
    for a in n.attributes() {
        if a.name() != "className" && !taken.contains(&a.name()) {
            out.no_equivalent(&at(n, a.name()), why);
        }
    }
}

/// Channel send options, as a number or Tomcat's names (`"ack,sync"`, `"async"`).
fn send_options(v: &str) -> Option<u32> {
    if let Ok(n) = v.trim().parse::<u32>() {
        return Some(n);
    }
    let mut flags = 0;
    for part in v.split(',') {
        flags |= match part.trim().to_ascii_lowercase().as_str() {
            "async" | "asynchronous" => 8,
            "sync" | "synchronized_ack" => 4,
            "ack" | "use_ack" => 2,
            "byte" | "byte_message" => 1,
            "secure" => 16,
            "udp" => 32,
            "multicast" => 64,
            _ => return None,
        };
    }
    Some(flags)
}

/// `replication` for Tomcat's send options (8 = asynchronous, 2/4 = acknowledged).
fn replication(
    n: Node,
    attr: &str,
    default: u32,
    out: &mut Out,
) -> (&'static str, String, Option<&'static str>) {
    let raw = n.attribute(attr);
    let flags = match raw.map(send_options) {
        Some(Some(f)) => f,
        Some(None) => {
            out.warn(format!(
                "{} = {:?}: unknown send options; Tomcat's default {default} used",
                at(n, attr),
                raw.unwrap_or_default()
            ));
            default
        }
        None => default,
    };
    let from = match raw {
        Some(v) => format!("{} = \"{v}\"", at(n, attr)),
        None => format!("{} (Tomcat's default {default})", at(n, attr)),
    };
    if flags & 8 != 0 {
        ("async", from, None)
    } else if flags & 4 != 0 {
        ("sync", from, None)
    } else if flags & 2 != 0 {
        (
            "sync",
            from,
            Some("use_ack alone acknowledges receipt; shoal's sync waits until the replica has applied the change"),
        )
    } else {
        (
            "sync",
            from,
            Some("no ack flag: Tomcat sends without waiting or queueing; shoal's choices are sync (acknowledged) or async (queued)"),
        )
    }
}

/// The cluster's valves, applied to every context.
#[derive(Default)]
struct Valves {
    /// `<Valve>` elements were listed (Tomcat adds its defaults only when none are).
    listed: bool,
    replication: bool,
    /// ReplicationValve's `filter`.
    url_filter: Option<String>,
    /// JvmRouteBinderValve present (and its `enabled`).
    jvm_route_binder: Option<bool>,
}

/// The import of every document, in the order given (later files win on the same key).
pub fn import(docs: &[(&str, Document)]) -> Imported {
    let mut out = Out::default();
    let names: Vec<&str> = docs.iter().map(|(n, _)| *n).collect();
    out.header = vec![
        format!("Imported from Tomcat's {} by `shoal config import`.", names.join(", ")),
        "Each key names the Tomcat attribute it comes from; `CHANGED:` marks a different meaning.".into(),
        "Members authenticate with a shared secret Tomcat did not have: set SHOAL_CLUSTER_SECRET on every node.".into(),
    ];
    // The order tables are written in.
    for t in [
        "cluster",
        "cluster.receiver",
        "cluster.sender",
        "cluster.membership",
        "cluster.membership.multicast",
        "cluster.membership.dns",
        "cluster.failure_detector",
        "http",
    ] {
        out.table(t);
    }
    let mut contexts = Vec::new();
    let mut valves = Valves::default();
    for (_, doc) in docs {
        for e in elements(doc, "Engine") {
            if let Some(r) = e.attribute("jvmRoute") {
                out.set("cluster", "name", r, "<Engine jvmRoute>", None);
            }
        }
        let cluster = elements(doc, "Cluster").next();
        // A fragment without <Cluster> (seed 000's <Interceptor>) is read as its content.
        let scope = cluster.unwrap_or_else(|| doc.root());
        if let Some(c) = cluster {
            cluster_element(c, &mut out);
        }
        if cluster.is_some() || has_channel_parts(doc) {
            channel(scope, cluster.is_some(), &mut valves, &mut out);
        }
        contexts.extend(elements(doc, "Manager").filter(|m| !has_ancestor(*m, "Cluster")));
    }
    // Contexts: each <Manager> outside <Cluster> (context.xml, <Context>), else one
    // context with the cluster's manager template.
    if contexts.is_empty() {
        context(None, docs, &valves, &mut out);
    }
    for m in contexts {
        context(Some(m), docs, &valves, &mut out);
    }
    let warnings = out.warnings.clone();
    Imported { out, warnings }
}

fn has_channel_parts(doc: &Document) -> bool {
    [
        "Channel",
        "Membership",
        "Receiver",
        "Sender",
        "Interceptor",
        "Valve",
        "Deployer",
    ]
    .iter()
    .any(|t| elements(doc, t).next().is_some())
}

/// `<Cluster>`'s own attributes (Tomcat 5's carried the manager's).
fn cluster_element(c: Node, out: &mut Out) {
    let cls = class_of(c);
    if !cls.is_empty() && cls != "SimpleTcpCluster" {
        out.warn(format!(
            "<Cluster className=\"{}\"> is not SimpleTcpCluster; read as one",
            c.attribute("className").unwrap_or_default()
        ));
    }
    rest(
        c,
        &[
            "channelSendOptions",
            "managerClassName",
            "useDirtyFlag",
            "expireSessionsOnShutdown",
            "notifyListenersOnReplication",
            "channelStartOptions",
            "heartbeatBackgroundEnabled",
            "notifyLifecycleListenerOnFailure",
        ],
        "not a setting in shoal",
        out,
    );
    if c.attribute("channelStartOptions").is_some() {
        out.no_equivalent(
            &at(c, "channelStartOptions"),
            "a shoal node always starts its whole channel",
        );
    }
    for a in [
        "heartbeatBackgroundEnabled",
        "notifyLifecycleListenerOnFailure",
    ] {
        if c.attribute(a).is_some() {
            out.no_equivalent(
                &at(c, a),
                "shoal runs its heartbeat and membership events itself",
            );
        }
    }
}

/// `<Channel>` and what sits in it (or, for a fragment, anywhere in the document).
fn channel(scope: Node, in_cluster: bool, valves: &mut Valves, out: &mut Out) {
    let find = |tag: &'static str| {
        scope
            .descendants()
            .filter(move |n| n.is_element() && n.tag_name().name() == tag)
    };
    if let Some(ch) = find("Channel").next() {
        let cls = class_of(ch);
        if !cls.is_empty() && cls != "GroupChannel" {
            out.warn(format!(
                "<Channel className=\"{}\"> is unknown; read as GroupChannel",
                ch.attribute("className").unwrap_or_default()
            ));
        }
    }
    let mut membership_seen = false;
    for m in find("Membership") {
        membership_seen = true;
        membership(m, out);
    }
    if in_cluster && !membership_seen {
        // Tomcat's default McastService.
        out.set(
            "cluster.membership",
            "provider",
            "multicast",
            "<Membership> absent: Tomcat's default McastService 228.0.0.4:45564",
            None,
        );
    }
    for r in find("Receiver") {
        receiver(r, out);
    }
    if in_cluster && find("Receiver").next().is_none() {
        out.set(
            "cluster.receiver",
            "address",
            "127.0.0.1",
            "<Receiver> absent: Tomcat's address=\"auto\"",
            Some("Tomcat's \"auto\" advertises this host's address; shoal needs it named: put this host's cluster address here"),
        );
    }
    for s in find("Sender") {
        sender(s, out);
    }
    let mut interceptors = 0;
    for i in find("Interceptor") {
        interceptors += 1;
        interceptor(i, out);
    }
    if in_cluster && interceptors == 0 {
        out.no_equivalent(
            "<Interceptor> absent: Tomcat's default TcpFailureDetector + MessageDispatch",
            "built into every shoal node ([cluster.failure_detector], [cluster.sender] queue_bytes)",
        );
    }
    for v in find("Valve") {
        valves.listed = true;
        valve(v, valves, out);
    }
    for d in find("Deployer") {
        deployer(d, out);
    }
    for l in find("ClusterListener") {
        match class_of(l) {
            "ClusterSessionListener" | "JvmRouteSessionIDBinderListener" => out.no_equivalent(
                &format!("<ClusterListener className=\"{}\">", class_of(l)),
                "built in: the session manager takes its own messages, and JvmRouteBinderValve's rewrite is replicated by the manager",
            ),
            _ => out.warn(format!(
                "<ClusterListener className=\"{}\"> is unknown to shoal; left out (a Wasm interceptor plugin can listen to cluster messages)",
                l.attribute("className").unwrap_or_default()
            )),
        }
    }
}

fn membership(m: Node, out: &mut Out) {
    match class_of(m) {
        "McastService" | "" => {
            out.set("cluster.membership", "provider", "multicast", "<Membership className=McastService>", None);
            for (attr, key) in [("address", "address"), ("bind", "interface")] {
                if let Some(v) = m.attribute(attr) {
                    out.set("cluster.membership.multicast", key, v, &at(m, attr), None);
                }
            }
            int_to(m, "port", "cluster.membership.multicast", "port", None, out);
            int_to(m, "frequency", "cluster.membership.multicast", "frequency_ms", None, out);
            int_to(m, "ttl", "cluster.membership.multicast", "ttl", None, out);
            if let Some(b) = boolean(m, "localLoopbackDisabled") {
                out.set("cluster.membership.multicast", "loopback", !b, &at(m, "localLoopbackDisabled"), None);
            }
            if let Some(d) = m.attribute("domain") {
                out.set("cluster", "domain", d, &at(m, "domain"), Some("shoal refuses members of other domains at the handshake (Tomcat's DomainFilterInterceptor), not only in membership"));
            }
            int_to(m, "dropTime", "cluster.failure_detector", "suspect_after_ms", Some("Tomcat drops a member after this long without a beacon; shoal suspects it after this long without any frame and verifies it over TCP before dropping it (shoal's default: 600 ms)"), out);
            rest(
                m,
                &["address", "bind", "port", "frequency", "ttl", "localLoopbackDisabled", "domain", "dropTime"],
                "multicast socket tuning shoal does not expose (soTimeout, recovery*)",
                out,
            );
        }
        "StaticMembershipService" => {
            out.set("cluster.membership", "provider", "static", "<Membership className=StaticMembershipService>", None);
            static_members(m, out);
        }
        "CloudMembershipService" => {
            let provider = m.attribute("membershipProviderClassName").unwrap_or("kubernetes");
            if provider.to_ascii_lowercase().contains("dns") {
                out.set("cluster.membership", "provider", "dns", "<Membership className=CloudMembershipService membershipProviderClassName=dns>", Some("the DNS name is not in server.xml (Tomcat reads DNS_MEMBERSHIP_SERVICE_NAME): set [cluster.membership.dns] name"));
            } else {
                out.set("cluster.membership", "provider", "dns", "<Membership className=CloudMembershipService>", Some("shoal has no Kubernetes API provider: point [cluster.membership.dns] name at a headless service of the pods"));
            }
        }
        other => out.warn(format!(
            "<Membership className=\"{}\"> is unknown ({other}); membership left at shoal's default (static list)",
            m.attribute("className").unwrap_or_default()
        )),
    }
}

/// `<Member>` / `<LocalMember>` children: the static list.
fn static_members(parent: Node, out: &mut Out) {
    let mut members = Vec::new();
    for mem in parent.children().filter(|c| c.is_element()) {
        match mem.tag_name().name() {
            "Member" => {
                let (Some(host), Some(port)) = (mem.attribute("host"), mem.attribute("port")) else {
                    out.warn("<Member> without host or port; left out".into());
                    continue;
                };
                members.push(format!("{host}:{port}"));
                if let Some(d) = mem.attribute("domain") {
                    out.set("cluster", "domain", d, "<Member domain>", Some("one domain for the whole cluster: shoal refuses members of other domains at the handshake"));
                }
                rest(mem, &["host", "port", "domain"], "shoal members get their id at start and have no separate secure port (uniqueId, securePort)", out);
            }
            "LocalMember" => out.no_equivalent("<LocalMember>", "this node is described by [cluster] name and [cluster.receiver]; listing it in members is harmless"),
            other => out.warn(format!("<{other}> inside the static membership is unknown; left out")),
        }
    }
    if !members.is_empty() {
        let list: Vec<toml::Value> = members.into_iter().map(toml::Value::String).collect();
        out.set(
            "cluster.membership",
            "provider",
            "static",
            "<Interceptor className=StaticMembershipInterceptor>",
            None,
        );
        out.set(
            "cluster.membership",
            "members",
            list,
            "<Member host port>",
            None,
        );
    }
}

fn receiver(r: Node, out: &mut Out) {
    match class_of(r) {
        "NioReceiver" | "BioReceiver" | "" => {}
        _ => out.warn(format!(
            "<Receiver className=\"{}\"> is unknown; read as NioReceiver",
            r.attribute("className").unwrap_or_default()
        )),
    }
    match r.attribute("address") {
        Some("auto") | None => out.set(
            "cluster.receiver",
            "address",
            "127.0.0.1",
            "<Receiver address=\"auto\">",
            Some("Tomcat's \"auto\" advertises this host's address; shoal needs it named: put this host's cluster address here"),
        ),
        Some(a) => out.set("cluster.receiver", "address", a, &at(r, "address"), None),
    }
    int_to(r, "port", "cluster.receiver", "port", None, out);
    int_to(r, "autoBind", "cluster.receiver", "auto_bind", None, out);
    rest(
        r,
        &["address", "port", "autoBind"],
        "shoal's receiver runs on the node's async runtime (size it with `shoal node --worker-threads`) with its own socket settings",
        out,
    );
}

fn sender(s: Node, out: &mut Out) {
    rest(s, &[], "not a setting in shoal", out);
    for t in s.children().filter(|c| c.is_element()) {
        match class_of(t) {
            "PooledParallelSender" | "PooledMultiSender" | "" => {}
            _ => out.warn(format!(
                "<Transport className=\"{}\"> is unknown; shoal's sender used",
                t.attribute("className").unwrap_or_default()
            )),
        }
        int_to(t, "timeout", "cluster.sender", "timeout_ms", None, out);
        rest(
            t,
            &["timeout"],
            "shoal keeps one connection per member and retries on reconnect (pool sizes, retries, socket options)",
            out,
        );
    }
}

/// Option keys of shoal's message-transforming interceptors, from Tomcat's attribute names.
const OPTION_KEYS: &[(&str, &str)] = &[
    ("optionFlag", "option_flag"),
    ("interval", "interval"),
    ("expire", "expire"),
    ("maxQueue", "max_queue"),
    ("maxSize", "max_size"),
    ("domain", "domain"),
    ("minCompressionSize", "min_compression_size"),
];

fn interceptor(i: Node, out: &mut Out) {
    let cls = class_of(i);
    let layer = match cls {
        "TcpFailureDetector" => {
            int_to(
                i,
                "connectTimeout",
                "cluster.failure_detector",
                "verify_timeout_ms",
                None,
                out,
            );
            rest(i, &["connectTimeout"], "shoal's verification is a TCP connect plus the peer's challenge frame (performSendTest, performReadTest, readTestTimeout)", out);
            out.no_equivalent(
                "<Interceptor className=TcpFailureDetector>",
                "always on in shoal: [cluster.failure_detector]",
            );
            return;
        }
        "TcpPingInterceptor" => {
            int_to(
                i,
                "interval",
                "cluster.failure_detector",
                "ping_interval_ms",
                None,
                out,
            );
            rest(i, &["interval"], "not a setting in shoal", out);
            out.no_equivalent(
                "<Interceptor className=TcpPingInterceptor>",
                "always on in shoal: [cluster.failure_detector] ping_interval_ms",
            );
            return;
        }
        "MessageDispatchInterceptor" | "MessageDispatch15Interceptor" => {
            int_to(i, "maxQueueSize", "cluster.sender", "queue_bytes", Some("when the queue is full shoal makes the sender wait (and counts it); Tomcat sent synchronously instead"), out);
            rest(
                i,
                &["maxQueueSize"],
                "shoal's queue has one sender per member (maxThreads, keepAliveTime, alwaysSend)",
                out,
            );
            out.no_equivalent(&format!("<Interceptor className={cls}>"), "always on in shoal: asynchronous replication queues in [cluster.sender] queue_bytes");
            return;
        }
        "StaticMembershipInterceptor" => {
            static_members(i, out);
            return;
        }
        "DomainFilterInterceptor" => {
            if let Some(d) = i.attribute("domain") {
                out.set(
                    "cluster",
                    "domain",
                    d,
                    &at(i, "domain"),
                    Some(
                        "enforced at the handshake: a member of another domain is never connected",
                    ),
                );
            }
            return;
        }
        "ThroughputInterceptor" => "Throughput",
        "OrderInterceptor" => "Order",
        "FragmentationInterceptor" => "Fragmentation",
        "GzipInterceptor" => "Gzip",
        "EncryptInterceptor" => {
            out.no_equivalent("<Interceptor className=EncryptInterceptor>", "its key is not imported: add [[cluster.interceptor]] name = \"Encrypt\" with encryption_key (64 hex digits) on every node, or rely on the authenticated channel (SHOAL_CLUSTER_SECRET)");
            return;
        }
        "NonBlockingCoordinator" | "SimpleCoordinator" => "Coordinator",
        "TwoPhaseCommitInterceptor" => {
            out.no_equivalent(
                "<Interceptor className=TwoPhaseCommitInterceptor>",
                "shoal's synchronous replication already waits for every member to apply a change",
            );
            return;
        }
        _ => {
            out.warn(format!(
                "<Interceptor className=\"{}\"> is unknown to shoal; left out (a Wasm interceptor plugin can take its place)",
                i.attribute("className").unwrap_or_default()
            ));
            return;
        }
    };
    let idx = out.push_array("cluster.interceptor");
    out.set_at(
        idx,
        "name",
        layer,
        &format!("<Interceptor className={cls}>"),
        Some("the stack must be the same, in the same order, on every node"),
    );
    let mut taken = Vec::new();
    for &(attr, key) in OPTION_KEYS {
        if let Some(v) = i.attribute(attr) {
            taken.push(attr);
            let value = match v.trim().parse::<i64>() {
                Ok(n) => toml::Value::Integer(n),
                Err(_) => toml::Value::String(v.into()),
            };
            out.set_at(idx, key, value, &at(i, attr), None);
        }
    }
    rest(i, &taken, "not a setting of shoal's layer", out);
}

fn valve(v: Node, valves: &mut Valves, out: &mut Out) {
    match class_of(v) {
        "ReplicationValve" => {
            valves.url_filter = v.attribute("filter").map(str::to_owned);
            valves.replication = true;
            rest(v, &["filter"], "shoal's manager replicates at the end of each request itself (primaryIndicator, statistics)", out);
        }
        "JvmRouteBinderValve" => {
            valves.jvm_route_binder = Some(boolean(v, "enabled").unwrap_or(true));
            rest(v, &["enabled"], "not a setting in shoal", out);
        }
        _ => out.warn(format!(
            "<Valve className=\"{}\"> is unknown to shoal; left out (a Wasm valve plugin can take its place)",
            v.attribute("className").unwrap_or_default()
        )),
    }
}

fn deployer(d: Node, out: &mut Out) {
    if class_of(d) != "FarmWarDeployer" {
        out.warn(format!(
            "<Deployer className=\"{}\"> is unknown; left out",
            d.attribute("className").unwrap_or_default()
        ));
        return;
    }
    match (boolean(d, "watchEnabled").unwrap_or(false), d.attribute("watchDir")) {
        (true, Some(w)) => out.set(
            "farm",
            "watch_dir",
            w,
            "<Deployer watchDir> (watchEnabled=\"true\")",
            Some("set it on one node: a file dropped there is signed-off, staged on every member and activated everywhere at once"),
        ),
        (false, Some(_)) => out.no_equivalent("<Deployer watchDir> with watchEnabled=\"false\"", "not watched in Tomcat either; [farm] watch_dir turns watching on"),
        _ => {}
    }
    for a in ["tempDir", "deployDir"] {
        if d.attribute(a).is_some() {
            out.no_equivalent(&at(d, a), "shoal keeps staged and active artifacts under [farm] dir (data/farm/{node}), not in WAR directories");
        }
    }
    rest(
        d,
        &["watchEnabled", "watchDir", "tempDir", "deployDir"],
        "not a setting in shoal (shoal deploys Wasm components, not WARs)",
        out,
    );
}

/// One `[[http.contexts]]` from a context's `<Manager>` (or the cluster's template).
fn context<'a, 'i>(
    m: Option<Node<'a, 'i>>,
    docs: &'a [(&str, Document<'i>)],
    valves: &Valves,
    out: &mut Out,
) {
    let template = docs
        .iter()
        .find_map(|(_, d)| elements(d, "Manager").find(|m| has_ancestor(*m, "Cluster")));
    let tomcat5 = docs.iter().find_map(|(_, d)| {
        elements(d, "Cluster").find_map(|c| c.attribute("managerClassName").map(|_| c))
    });
    let cluster = docs.iter().find_map(|(_, d)| elements(d, "Cluster").next());
    let idx = out.push_array("http.contexts");
    let path = m.and_then(|m| {
        m.ancestors()
            .find(|a| a.tag_name().name() == "Context")
            .and_then(|c| c.attribute("path"))
    });
    match path {
        Some(p) if p.starts_with('/') && p.len() > 1 => out.set_at(idx, "path", p, "<Context path>", None),
        _ => out.set_at(
            idx,
            "path",
            "/app",
            "the webapp's context path",
            Some("the Tomcat files do not say the context's path (context.xml, a cluster-wide template): put your application's path here"),
        ),
    }
    out.set_at(
        idx,
        "app",
        "bench",
        "the webapp",
        Some("shoal runs applications as Wasm components ([[plugin]]); `bench` is the built-in sample until yours is deployed"),
    );
    match (&valves.url_filter, valves.replication) {
        (Some(f), _) => out.set_at(
            idx,
            "url_filter",
            f.as_str(),
            "<Valve className=ReplicationValve filter>",
            None,
        ),
        (None, true) => out.set_at(
            idx,
            "url_filter",
            "",
            "<Valve className=ReplicationValve> without filter",
            Some("every request replicates, as in Tomcat; shoal's default skips static files"),
        ),
        (None, false) if cluster.is_some() && !valves.listed => out.set_at(
            idx,
            "url_filter",
            "",
            "<Cluster> default ReplicationValve (no filter)",
            Some("every request replicates, as in Tomcat; shoal's default skips static files"),
        ),
        _ => {}
    }
    let jvm_route = match valves.jvm_route_binder {
        Some(on) => Some((on, "<Valve className=JvmRouteBinderValve>")),
        None if cluster.is_some() && !valves.listed => {
            Some((true, "<Cluster> default valves: JvmRouteBinderValve"))
        }
        // Valves were listed without JvmRouteBinderValve: Tomcat does not rewrite ids.
        None if valves.listed => Some((false, "<Valve> list without JvmRouteBinderValve")),
        None => None,
    };
    if let Some((on, from)) = jvm_route {
        out.set_at(idx, "jvm_route_binder", on, from, None);
    }
    let manager = m.or(template);
    let session = "http.contexts.session";
    out.table(session);
    match manager {
        Some(mgr) => manager_element(mgr, cluster, out),
        None if tomcat5.is_some() => {
            if let Some(c) = tomcat5 {
                tomcat5_manager(c, out);
            }
        }
        None if cluster.is_some() => {
            out.set(
                session,
                "manager",
                "delta",
                "<Cluster> without <Manager>: Tomcat's default DeltaManager",
                None,
            );
        }
        None => {}
    }
    if let Some(c) = cluster {
        if out.has(session, "manager") && !out.has(session, "replication") {
            let (mode, from, changed) = replication(c, "channelSendOptions", 8, out);
            out.set(session, "replication", mode, &from, changed);
        }
    }
}

/// Tomcat 5's `<Cluster managerClassName useDirtyFlag>`.
fn tomcat5_manager(c: Node, out: &mut Out) {
    let session = "http.contexts.session";
    let cls = c.attribute("managerClassName").unwrap_or_default();
    let short = cls.rsplit('.').next().unwrap_or(cls);
    match short {
        "DeltaManager" => out.set(
            session,
            "manager",
            "delta",
            "<Cluster managerClassName=DeltaManager>",
            None,
        ),
        "SimpleTcpReplicationManager" => {
            out.set(
                session,
                "manager",
                "delta",
                "<Cluster managerClassName=SimpleTcpReplicationManager>",
                None,
            );
            out.set(
                session,
                "replicate_whole_session",
                true,
                "SimpleTcpReplicationManager sends whole sessions",
                None,
            );
        }
        _ => {
            out.warn(format!(
                "<Cluster managerClassName=\"{cls}\"> is unknown; DeltaManager used"
            ));
            out.set(
                session,
                "manager",
                "delta",
                "unknown managerClassName",
                None,
            );
        }
    }
    if let Some(dirty) = boolean(c, "useDirtyFlag") {
        out.set(
            session,
            "replicate_whole_session",
            !dirty,
            "<Cluster useDirtyFlag>",
            Some("shoal always tracks changed attributes; false sends the whole session whenever it changed (useDirtyFlag=false replicated after every request)"),
        );
    }
    flags_without_equivalent(c, out);
}

fn flags_without_equivalent(m: Node, out: &mut Out) {
    if m.attribute("expireSessionsOnShutdown").is_some() {
        out.no_equivalent(&at(m, "expireSessionsOnShutdown"), "a stopping shoal node drains and hands its sessions on; it never expires them cluster-wide");
    }
    if m.attribute("notifyListenersOnReplication").is_some() {
        out.no_equivalent(
            &at(m, "notifyListenersOnReplication"),
            "shoal has no servlet session listeners; plugins see sessions through the request",
        );
    }
}

/// A `<Manager>`: DeltaManager, BackupManager or PersistentManager (with its `<Store>`).
fn manager_element(m: Node, cluster: Option<Node>, out: &mut Out) {
    let session = "http.contexts.session";
    let cls = class_of(m);
    match cls {
        "DeltaManager" | "BackupManager" => {
            let kind = if cls == "DeltaManager" {
                "delta"
            } else {
                "backup"
            };
            out.set(
                session,
                "manager",
                kind,
                &format!("<Manager className={cls}>"),
                None,
            );
            if cls == "BackupManager" {
                let (mode, from, changed) = replication(m, "mapSendOptions", 6, out);
                out.set(session, "replication", mode, &from, changed);
                int_to(
                    m,
                    "rpcTimeout",
                    session,
                    "fetch_timeout_ms",
                    Some(
                        "how long a request waits for a session fetched from its primary or backup",
                    ),
                    out,
                );
            } else if let Some(c) = cluster {
                let (mode, from, changed) = replication(c, "channelSendOptions", 8, out);
                out.set(session, "replication", mode, &from, changed);
            }
            int_at_least(
                m,
                "stateTransferTimeout",
                session,
                "state_transfer_timeout_secs",
                1,
                Some("shoal then asks the next member instead of starting with partial state"),
                out,
            );
            int_at_least(
                m,
                "sendAllSessionsSize",
                session,
                "send_all_sessions_size",
                1,
                None,
                out,
            );
            int_at_least(
                m,
                "maxInactiveInterval",
                session,
                "max_inactive_secs",
                0,
                None,
                out,
            );
            flags_without_equivalent(m, out);
            rest(
                m,
                &[
                    "mapSendOptions",
                    "rpcTimeout",
                    "stateTransferTimeout",
                    "sendAllSessionsSize",
                    "maxInactiveInterval",
                    "expireSessionsOnShutdown",
                    "notifyListenersOnReplication",
                ],
                "not a setting of shoal's managers",
                out,
            );
        }
        "PersistentManager" => persistent(m, out),
        "StandardManager" | "" => {
            out.set(
                session,
                "manager",
                "delta",
                &format!(
                    "<Manager className={}>",
                    if cls.is_empty() {
                        "StandardManager"
                    } else {
                        cls
                    }
                ),
                Some(
                    "shoal has no single-node manager: the sessions are replicated to every member",
                ),
            );
        }
        _ => {
            out.warn(format!(
                "<Manager className=\"{}\"> is unknown to shoal; DeltaManager used",
                m.attribute("className").unwrap_or_default()
            ));
            out.set(
                session,
                "manager",
                "delta",
                "unknown <Manager className>",
                None,
            );
        }
    }
}

fn persistent(m: Node, out: &mut Out) {
    let session = "http.contexts.session";
    let p = "http.contexts.session.persistent";
    out.set(
        session,
        "manager",
        "persistent",
        "<Manager className=PersistentManager>",
        None,
    );
    out.set(
        p,
        "mode",
        "sticky",
        "PersistentManager (sticky load balancing)",
        None,
    );
    for (attr, key) in [
        ("maxIdleBackup", "max_idle_backup"),
        ("maxIdleSwap", "max_idle_swap"),
        ("minIdleSwap", "min_idle_swap"),
        ("maxActiveSessions", "max_active_sessions"),
    ] {
        if let Some(v) = int(m, attr, out) {
            let changed = (key == "max_idle_backup" && v == 0).then_some(
                "0 is write-through in shoal: every answered request is in the store (Tomcat backed up at its next background run)",
            );
            out.set(p, key, v, &at(m, attr), changed);
        }
    }
    if let Some(b) = boolean(m, "saveOnRestart") {
        out.set(p, "save_on_restart", b, &at(m, "saveOnRestart"), None);
    }
    int_at_least(
        m,
        "processExpiresFrequency",
        p,
        "process_expires_frequency",
        1,
        Some("counted in shoal's 1 s ticks (Tomcat: backgroundProcessorDelay, 10 s)"),
        out,
    );
    int_at_least(
        m,
        "maxInactiveInterval",
        session,
        "max_inactive_secs",
        0,
        None,
        out,
    );
    rest(
        m,
        &[
            "maxIdleBackup",
            "maxIdleSwap",
            "minIdleSwap",
            "maxActiveSessions",
            "saveOnRestart",
            "processExpiresFrequency",
            "maxInactiveInterval",
        ],
        "not a setting of shoal's persistent manager",
        out,
    );
    for s in m
        .children()
        .filter(|c| c.is_element() && c.tag_name().name() == "Store")
    {
        store(s, out);
    }
}

/// `<Store>`: FileStore or JDBCStore / DataSourceStore.
fn store(s: Node, out: &mut Out) {
    let t = "http.contexts.session.store";
    match class_of(s) {
        "FileStore" => {
            out.set(t, "kind", "file", "<Store className=FileStore>", None);
            let dir = s.attribute("directory").unwrap_or("sessions");
            out.set(t, "directory", dir, &at(s, "directory"), Some("one node per directory; relative to the node's working directory (Tomcat: to the webapp's work directory)"));
            rest(s, &["directory"], "not a setting of shoal's file store", out);
        }
        "JDBCStore" | "DataSourceStore" => {
            let url = s.attribute("connectionURL");
            let (kind, url, user, password) = match url.map(jdbc_url) {
                Some(Some(parts)) => parts,
                Some(None) => {
                    out.warn(format!(
                        "<Store connectionURL=\"{}\"> is not a MySQL, MariaDB or PostgreSQL JDBC URL; the store was left out (shoal's stores: file, sqlite, postgres, mysql, redis)",
                        url.unwrap_or_default()
                    ));
                    return;
                }
                None => {
                    out.no_equivalent(&at(s, "dataSourceName"), "shoal opens its own pool: give [..session.store] kind and connection_url");
                    return;
                }
            };
            out.set(t, "kind", kind, &format!("<Store className={}> over {kind}", class_of(s)), None);
            out.set(t, "connection_url", url, &at(s, "connectionURL"), Some("a mysql:// or postgres:// URL instead of a JDBC URL; its other parameters are not used"));
            if let Some(u) = s.attribute("connectionName").or(user.as_deref()) {
                out.set(t, "connection_name", u, "<Store connectionName> or the URL's user", None);
            }
            if let Some(pw) = s.attribute("connectionPassword").or(password.as_deref()) {
                out.set(t, "connection_password", pw, "<Store connectionPassword> or the URL's password", None);
            }
            for (attr, key) in [
                ("sessionTable", "session_table"),
                ("sessionIdCol", "session_id_col"),
                ("sessionAppCol", "session_app_col"),
                ("sessionValidCol", "session_valid_col"),
                ("sessionMaxInactiveCol", "session_max_inactive_col"),
                ("sessionLastAccessedCol", "session_last_accessed_col"),
                ("sessionDataCol", "session_data_col"),
            ] {
                if let Some(v) = s.attribute(attr) {
                    out.set(t, key, v, &at(s, attr), None);
                }
            }
            if s.attribute("driverName").is_some() {
                out.no_equivalent(&at(s, "driverName"), "shoal's MySQL and PostgreSQL drivers are built in");
            }
            rest(
                s,
                &["connectionURL", "connectionName", "connectionPassword", "driverName", "sessionTable", "sessionIdCol", "sessionAppCol", "sessionValidCol", "sessionMaxInactiveCol", "sessionLastAccessedCol", "sessionDataCol"],
                "not a setting of shoal's SQL stores",
                out,
            );
        }
        _ => out.warn(format!(
            "<Store className=\"{}\"> is unknown to shoal; left out (shoal's stores: file, sqlite, postgres, mysql, redis)",
            s.attribute("className").unwrap_or_default()
        )),
    }
}

/// `jdbc:mysql://host:3306/db?user=u&password=p` → (`mysql`, `mysql://host:3306/db`, user, password).
fn jdbc_url(url: &str) -> Option<(&'static str, String, Option<String>, Option<String>)> {
    let rest = url.trim().strip_prefix("jdbc:")?;
    let (kind, scheme, tail) = if let Some(t) = rest.strip_prefix("mysql://") {
        ("mysql", "mysql", t)
    } else if let Some(t) = rest.strip_prefix("mariadb://") {
        ("mysql", "mysql", t)
    } else if let Some(t) = rest.strip_prefix("postgresql://") {
        ("postgres", "postgres", t)
    } else {
        return None;
    };
    let (base, query) = tail.split_once('?').unwrap_or((tail, ""));
    let mut user = None;
    let mut password = None;
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("user", v)) => user = Some(v.to_string()),
            Some(("password", v)) => password = Some(v.to_string()),
            _ => {}
        }
    }
    Some((kind, format!("{scheme}://{base}"), user, password))
}
