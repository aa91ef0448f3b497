//! Faults during a farm deploy, on real `shoal node` processes: a corrupted chunk, the
//! coordinating node killed (`kill -9`) during the transfer and at every point of its commit
//! window, two deploys of one name started at once on two nodes, and a deploy hook's veto.
//! Each ends with nothing half-active, by the rule of `shoal_farm` ("The commit window"):
//! the coordinator activates its own copy last, after every other member confirmed. Killed
//! before any Activate reached a member, nobody runs the change (reservations expire) and
//! the survivors keep the old version; killed after one member activated, every survivor
//! rolls forward; either way the restarted coordinator converges to the survivors' set
//! before it reports ready.
//!
//! Faults are injected with `[farm.faults]` (test-only knobs, off by default,
//! `server/farm/src/settings/faults.rs`): `corrupt_chunks_to` flips a byte of the first chunk
//! a node sends to the named members (the receivers' own sha256 check must catch it), and
//! `hold_activate_ms` with `hold_at` holds the coordinator at a named point of its commit
//! window and logs it, so the test kills it there on a condition, not on timing. (A member
//! killed mid-transfer is covered by `farm_converge.rs`.)
use shoal_testkit::eventually_blocking;
use shoal_tests::farm::{all_active, component, config, json, start, FarmNode};
use std::time::{Duration, Instant};

/// Small chunks and a window of 1 keep a transfer in flight long enough to be caught;
/// a short stage deadline makes orphaned reservations expire within the test
/// (reservation TTL = 1.5 × the deadline = 6 s).
const FARM: &str =
    "chunk_bytes = 1024\nwindow = 1\nstage_deadline_secs = 4\nmax_upload_bytes = 8388608";

fn content(size: usize, seed: u8) -> Vec<u8> {
    (0..size)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// `name` is neither deployed nor live on any of `nodes`.
fn nowhere(nodes: &[FarmNode], name: &str) {
    for n in nodes {
        assert!(n.deployment(name).is_none(), "{}: not deployed", n.name());
        assert!(n.file(name).is_none(), "{}: nothing live", n.name());
    }
}

fn version_on(node: &FarmNode, name: &str) -> Option<String> {
    node.deployment(name)
        .and_then(|d| d["version"].as_str().map(str::to_string))
}

#[test]
fn a_corrupted_chunk_is_refused_naming_node_and_artifact() {
    let names = ["ka", "kb", "kc"];
    let (nodes, _, base) = start("farm-corrupt", &names, |n, dir| {
        let faults = if n == "ka" {
            "[farm.faults]\ncorrupt_chunks_to = [\"kb\"]\n"
        } else {
            ""
        };
        config(dir, FARM, faults)
    });
    let body = content(10_000, 1);
    let (status, text) = nodes[0].put("blob.bin", "kind=file&version=1", &body);
    assert_eq!(status, 422, "{text}");
    let detail = json(&text)["detail"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        detail.contains("nothing was activated")
            && detail.contains("node kb")
            && detail.contains("blob.bin@1")
            && detail.contains("sha256"),
        "the refusal names the node, the artifact and the check: {detail}"
    );
    nowhere(&nodes, "blob.bin");
    let failures = nodes[1].metrics("shoal_farm_failures_total{kind=\"verify\"}");
    assert_eq!(
        failures,
        vec!["shoal_farm_failures_total{kind=\"verify\"} 1"]
    );
    eventually_blocking(
        "no staging file left behind",
        Duration::from_secs(5),
        || nodes.iter().all(|n| n.staged_bytes() == 0),
    );

    // The same artifact from a node without the fault reaches everyone intact; the
    // coordinator reports each node's activation instant and the skew between them.
    let (status, text) = nodes[2].put("blob.bin", "kind=file&version=1", &body);
    assert_eq!(status, 201, "{text}");
    for n in &nodes {
        assert!(n.file("blob.bin") == Some(body.clone()), "{}", n.name());
    }
    let d = json(&text);
    let skew = d["activation_skew_ms"]
        .as_u64()
        .unwrap_or_else(|| panic!("activation_skew_ms in the coordinator's view: {d}"));
    assert!(skew < 2_000, "loopback activation skew {skew} ms");
    let at: Vec<u64> = d["nodes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|n| n["activated_ms"].as_u64())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(at.len(), 3, "every node reported its activation: {d}");
    let spread = at.iter().max().unwrap_or(&0) - at.iter().min().unwrap_or(&0);
    assert_eq!(spread, skew, "the skew is max - min of the nodes' instants");
    let hist = nodes[2].metrics("shoal_farm_activation_skew_seconds_count");
    assert_eq!(hist, vec!["shoal_farm_activation_skew_seconds_count 1"]);
    let (status, events) = nodes[2].call("GET", "/api/v1/events/recent", b"");
    assert_eq!(status, 200, "{events}");
    assert!(
        events.contains(&format!("activation skew {skew} ms")),
        "the deploy event reports the skew: {events}"
    );
    drop(nodes);
    let _ = std::fs::remove_dir_all(base);
}

#[test]
fn the_coordinator_killed_mid_transfer_leaves_the_old_version_everywhere() {
    let names = ["la", "lb", "lc"];
    let (mut nodes, ports, base) =
        start("farm-kill-transfer", &names, |_, dir| config(dir, FARM, ""));
    let (status, text) = nodes[0].put("conf.bin", "kind=file&version=1", b"one");
    assert_eq!(status, 201, "{text}");

    let big = content(4 << 20, 2);
    let admin = nodes[0].admin.clone();
    let body = big.clone();
    let deploy = std::thread::spawn(move || {
        shoal_tests::farm::call(
            &admin,
            "PUT",
            "/api/v1/deployments/conf.bin?kind=file&version=2",
            &body,
        )
    });
    // The coordinator dies while lb is receiving version 2.
    eventually_blocking("lb receives version 2", Duration::from_secs(30), || {
        nodes[1].staged_bytes() > 0
    });
    nodes[0].http.proc.kill9();
    let caught = nodes[1].staged_bytes();
    assert!(
        caught < big.len() as u64,
        "killed mid-transfer ({caught} bytes)"
    );
    let (status, _, _) = deploy.join().expect("deploy thread");
    assert_eq!(status, 0, "the killed coordinator never answered");

    // Nothing of version 2 is active anywhere, while the orphaned reservations live and
    // after they expired: the survivors deploy version 3 once the name is free.
    let survivors = &nodes[1..];
    let v3 = b"three".to_vec();
    survivors_keep_v1_until_v3_goes_live(survivors, 0, &v3, |status, text| {
        if status == 409 {
            let p = json(text);
            assert_eq!(p["reason"], "deploy-in-progress", "{text}");
            assert_eq!(
                p["competing"]["node"], "la",
                "the dead coordinator's rollout: {text}"
            );
            assert_eq!(p["competing"]["version"], "2", "{text}");
        }
    });
    for n in survivors {
        assert_eq!(n.file("conf.bin"), Some(v3.clone()), "{}", n.name());
    }

    // The coordinator comes back and holds version 3 by the time it reports ready.
    let node = FarmNode::spawn(
        "la",
        ports[0],
        &ports,
        nodes[0].farm.clone(),
        &config(&nodes[0].farm, FARM, ""),
    );
    assert_eq!(
        node.file("conf.bin"),
        Some(v3.clone()),
        "la converged before ready"
    );
    nodes[0] = node;
    eventually_blocking("all active at version 3", Duration::from_secs(10), || {
        nodes[1].states("conf.bin") == all_active(&names)
            && nodes
                .iter()
                .all(|n| version_on(n, "conf.bin").as_deref() == Some("3"))
    });
    eventually_blocking(
        "no staging file left anywhere",
        Duration::from_secs(10),
        || nodes.iter().all(|n| n.staged_bytes() == 0),
    );
    drop(nodes);
    let _ = std::fs::remove_dir_all(base);
}

/// While a dead coordinator's reservations live, every survivor keeps version 1 of
/// conf.bin (file and API); `survivors[from]` retries version 3 until the name is free
/// (each refusal, 409 or 503, is passed to `refused`), within 30 s.
fn survivors_keep_v1_until_v3_goes_live(
    survivors: &[FarmNode],
    from: usize,
    v3: &[u8],
    refused: impl Fn(u16, &str),
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for n in survivors {
            assert_eq!(
                n.file("conf.bin").as_deref(),
                Some(&b"one"[..]),
                "{}",
                n.name()
            );
            assert_eq!(
                version_on(n, "conf.bin").as_deref(),
                Some("1"),
                "{}",
                n.name()
            );
        }
        let (status, text) = survivors[from].put("conf.bin", "kind=file&version=3", v3);
        if status == 201 {
            return;
        }
        assert!(
            matches!(status, 409 | 503) && Instant::now() < deadline,
            "version 3 from {}: {status} {text}",
            survivors[from].name()
        );
        refused(status, &text);
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `ma` coordinates version 2 of conf.bin (version 1 live everywhere) and is held at
/// `hold_at` of its commit window; returns the nodes once the hold is logged, the ports, the
/// base dir and the deploy thread.
type Deploying = std::thread::JoinHandle<(u16, String, String)>;
fn hold_the_coordinator_at(
    test: &str,
    names: [&'static str; 3],
    hold_at: &str,
    v2: &[u8],
) -> (Vec<FarmNode>, Vec<u16>, std::path::PathBuf, Deploying) {
    let faults = format!("[farm.faults]\nhold_activate_ms = 60000\nhold_at = \"{hold_at}\"\n");
    let (nodes, ports, base) = start(test, &names, |n, dir| {
        config(dir, FARM, if n == names[0] { &faults } else { "" })
    });
    let (status, text) = nodes[1].put("conf.bin", "kind=file&version=1", b"one");
    assert_eq!(status, 201, "{text}");
    let admin = nodes[0].admin.clone();
    let body = v2.to_vec();
    let deploy = std::thread::spawn(move || {
        shoal_tests::farm::call(
            &admin,
            "PUT",
            "/api/v1/deployments/conf.bin?kind=file&version=2",
            &body,
        )
    });
    let line = nodes[0].http.proc.wait_log(
        &["[farm.faults] holding rollout", hold_at],
        Duration::from_secs(30),
    );
    assert!(line.is_some(), "{} held at {hold_at}", names[0]);
    (nodes, ports, base, deploy)
}

/// Kills the held coordinator: its PUT never answers.
fn kill_coordinator(nodes: &mut [FarmNode], deploy: Deploying) {
    nodes[0].http.proc.kill9();
    let (status, _, _) = deploy.join().expect("deploy thread");
    assert_eq!(status, 0, "the killed coordinator never answered");
}

/// Restarts the coordinator (without the fault) and checks it runs `content` at `version`
/// by the time it reports ready, like every survivor.
fn restart_coordinator_converges(
    nodes: &mut [FarmNode],
    ports: &[u16],
    content: &[u8],
    version: &str,
) {
    let name = nodes[0].name().to_string();
    let node = FarmNode::spawn(
        &name,
        ports[0],
        ports,
        nodes[0].farm.clone(),
        &config(&nodes[0].farm, FARM, ""),
    );
    assert_eq!(
        node.file("conf.bin").as_deref(),
        Some(content),
        "{name} converged before ready"
    );
    assert_eq!(version_on(&node, "conf.bin").as_deref(), Some(version));
    nodes[0] = node;
    for n in nodes.iter() {
        assert_eq!(n.file("conf.bin").as_deref(), Some(content), "{}", n.name());
        assert_eq!(
            version_on(n, "conf.bin").as_deref(),
            Some(version),
            "{}",
            n.name()
        );
    }
}

#[test]
fn the_coordinator_killed_before_any_activate_activates_nothing() {
    let names = ["ma", "mb", "mc"];
    let v2 = content(20_000, 3);
    let (mut nodes, ports, base, deploy) =
        hold_the_coordinator_at("farm-kill-commit", names, "before-first-activate", &v2);
    let staged = vec![
        ("ma".to_string(), "staged".to_string()),
        ("mb".to_string(), "staged".to_string()),
        ("mc".to_string(), "staged".to_string()),
    ];
    assert_eq!(nodes[0].states("conf.bin"), staged, "every node staged");
    kill_coordinator(&mut nodes, deploy);

    // Staged everywhere, activated nowhere: the survivors stay on version 1 until their
    // reservations expire, then version 3 goes live.
    let survivors = &nodes[1..];
    let v3 = b"three".to_vec();
    survivors_keep_v1_until_v3_goes_live(survivors, 1, &v3, |_, _| {});
    // ma restarts (its version 2 was never committed, nor active on it) and converges to
    // version 3.
    restart_coordinator_converges(&mut nodes, &ports, &v3, "3");
    drop(nodes);
    let _ = std::fs::remove_dir_all(base);
}

#[test]
fn the_coordinator_killed_after_one_member_activated_rolls_forward_everywhere() {
    let names = ["qa", "qb", "qc"];
    let v2 = content(20_000, 8);
    let (mut nodes, ports, base, deploy) =
        hold_the_coordinator_at("farm-kill-first", names, "after-first-activate", &v2);
    // qb got the first Activate; qa itself is not live yet (it activates last).
    eventually_blocking("qb runs version 2", Duration::from_secs(10), || {
        nodes[1].file("conf.bin").as_deref() == Some(&v2[..])
    });
    assert_eq!(nodes[0].file("conf.bin").as_deref(), Some(&b"one"[..]));
    kill_coordinator(&mut nodes, deploy);
    // qc never got Activate from qa: it adopts version 2 from qb, well before its
    // reservation would expire (6 s).
    eventually_blocking("qc rolls forward", Duration::from_secs(5), || {
        nodes[2].file("conf.bin").as_deref() == Some(&v2[..])
    });
    restart_coordinator_converges(&mut nodes, &ports, &v2, "2");
    drop(nodes);
    let _ = std::fs::remove_dir_all(base);
}

#[test]
fn the_coordinator_killed_before_its_own_activation_follows_the_members() {
    let names = ["ra", "rb", "rc"];
    let v2 = content(20_000, 9);
    let (mut nodes, ports, base, deploy) =
        hold_the_coordinator_at("farm-kill-own", names, "before-own-activation", &v2);
    // Held before its own Apply: both members run version 2, ra still runs version 1.
    for n in &nodes[1..] {
        assert_eq!(n.file("conf.bin").as_deref(), Some(&v2[..]), "{}", n.name());
    }
    assert_eq!(nodes[0].file("conf.bin").as_deref(), Some(&b"one"[..]));
    kill_coordinator(&mut nodes, deploy);
    restart_coordinator_converges(&mut nodes, &ports, &v2, "2");
    drop(nodes);
    let _ = std::fs::remove_dir_all(base);
}

#[test]
fn two_deploys_of_one_name_at_once_one_wins_the_other_gets_a_typed_409() {
    let names = ["na", "nb", "nc"];
    let (nodes, _, base) = start("farm-race", &names, |_, dir| {
        config(dir, "chunk_bytes = 1024\nmax_upload_bytes = 8388608", "")
    });
    let bodies = [content(1 << 20, 4), content(1 << 20, 5)];
    let go = std::sync::Arc::new(std::sync::Barrier::new(2));
    let threads: Vec<_> = (0..2)
        .map(|i| {
            let (admin, body, go) = (nodes[i].admin.clone(), bodies[i].clone(), go.clone());
            std::thread::spawn(move || {
                go.wait();
                let path = format!("/api/v1/deployments/race.bin?kind=file&version=v{i}");
                shoal_tests::farm::call(&admin, "PUT", &path, &body)
            })
        })
        .collect();
    let answers: Vec<(u16, String)> = threads
        .into_iter()
        .map(|t| {
            let (status, _, body) = t.join().expect("deploy thread");
            (status, body)
        })
        .collect();
    let statuses: Vec<u16> = answers.iter().map(|a| a.0).collect();
    let winner = match statuses.as_slice() {
        [201, 409] => 0,
        [409, 201] => 1,
        _ => panic!("exactly one wins, the other gets 409: {answers:?}"),
    };
    let loser = 1 - winner;
    let p = json(&answers[loser].1);
    assert_eq!(p["status"], 409);
    assert_eq!(p["reason"], "deploy-in-progress", "typed reason: {p}");
    assert_eq!(
        p["competing"]["node"], names[winner],
        "the winner is named: {p}"
    );
    assert_eq!(p["competing"]["version"], format!("v{winner}"), "{p}");
    assert!(
        p["detail"].as_str().is_some_and(|d| d.contains("race.bin")),
        "the text names the deployment: {p}"
    );
    for n in &nodes {
        assert!(
            n.file("race.bin") == Some(bodies[winner].clone()),
            "{}: runs the winner's content",
            n.name()
        );
        // A member publishes its view before it tells the coordinator it activated: once
        // the deploy answered 201, every member's API shows the version.
        assert_eq!(
            version_on(n, "race.bin"),
            Some(format!("v{winner}")),
            "{}",
            n.name()
        );
    }
    drop(nodes);
    let _ = std::fs::remove_dir_all(base);
}

#[test]
fn a_deploy_hook_veto_refuses_the_artifact_with_the_hooks_reason() {
    let names = ["pa", "pb", "pc"];
    let (nodes, _, base) = start("farm-veto", &names, |_, dir| config(dir, FARM, ""));
    // The guard itself is farm-deployed: a deploy-hook plugin on every node.
    let (status, text) = nodes[0].put(
        "guard",
        "kind=plugin&version=1&meta.config.max-size=1000",
        &component("deploy-guard"),
    );
    assert_eq!(status, 201, "{text}");
    eventually_blocking("guard active everywhere", Duration::from_secs(10), || {
        nodes[2].states("guard") == all_active(&names)
    });

    let big = content(2_000, 6);
    for from in [1, 2] {
        let (status, text) = nodes[from].put("big.bin", "kind=file&version=1", &big);
        assert_eq!(status, 422, "{text}");
        let detail = json(&text)["detail"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            detail.contains("nothing was activated")
                && detail.contains(&format!("node {}", names[from]))
                && detail.contains("vetoed by a deploy hook")
                && detail.contains("big.bin is 2000 bytes, over the limit of 1000 bytes"),
            "the hook's reason, naming the node: {detail}"
        );
        nowhere(&nodes, "big.bin");
    }
    // Under the limit the hook allows it.
    let small = content(500, 7);
    let (status, text) = nodes[1].put("small.bin", "kind=file&version=1", &small);
    assert_eq!(status, 201, "{text}");
    for n in &nodes {
        assert_eq!(n.file("small.bin"), Some(small.clone()), "{}", n.name());
    }
    drop(nodes);
    let _ = std::fs::remove_dir_all(base);
}
