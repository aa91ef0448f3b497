//! `shoal plugin new` → `build` → `test` for every kind of plugin (valve, app, url-filter,
//! interceptor, deploy-hook) in a directory outside the repository, with the `shoal` binary
//! and cargo only (no wasm-tools): each scaffold builds into a component of its world, and
//! `shoal plugin test` runs it offline against samples (requests with a session carried from
//! one to the next, messages, artifacts) and prints what it did. A crate whose Cargo.toml
//! declares another world than the one its code exports is refused by `build`, naming both.
//!
//! Needs the `wasm32-unknown-unknown` target (as the examples' build does). The five crates
//! share one cargo target directory, so the SDK's dependencies are compiled once.
use shoal_tests::shoal_bin;
use std::path::Path;
use std::process::{Command, Output};

/// Runs `shoal plugin ARGS` with `target` as cargo's target directory (never the target
/// directory of the workspace running this test, which the environment may name).
fn plugin(target: &Path, args: &[&str]) -> Output {
    Command::new(shoal_bin())
        .arg("plugin")
        .args(args)
        .env("CARGO_TARGET_DIR", target)
        .output()
        .expect("run shoal plugin")
}

/// `out` succeeded; returns its stdout.
fn ok(what: &str, out: Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what}: {}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// `shoal plugin new KIND DIR` then `shoal plugin build DIR`: the component exists and is
/// of `world`.
fn scaffold_and_build(work: &Path, target: &Path, kind: &str, world: &str) -> String {
    let dir = work.join(kind);
    let dir_s = dir.to_string_lossy().into_owned();
    let wrote = ok(
        &format!("plugin new {kind}"),
        plugin(target, &["new", kind, &dir_s]),
    );
    for file in ["Cargo.toml", "src/lib.rs", "README.md"] {
        assert!(dir.join(file).is_file(), "{kind}: no {file}:\n{wrote}");
    }
    let built = ok(
        &format!("plugin build {kind}"),
        plugin(target, &["build", &dir_s]),
    );
    assert!(
        built.contains(&format!("world {world},")),
        "{kind}: built into the {world} world:\n{built}"
    );
    // The crate is named after its directory; the component lands in cargo's target dir.
    let component = target.join(format!("{kind}.component.wasm"));
    assert!(
        component.is_file(),
        "{kind}: no {}: {built}",
        component.display()
    );
    dir_s
}

/// `shoal plugin test DIR ARGS`: succeeded and printed every line of `expected`.
fn offline(target: &Path, dir: &str, args: &[&str], expected: &[&str]) {
    let out = ok(
        &format!("plugin test {dir}"),
        plugin(target, &[&["test", dir][..], args].concat()),
    );
    for line in expected {
        assert!(out.contains(line), "{dir}: no `{line}` in:\n{out}");
    }
}

#[test]
fn every_kind_is_scaffolded_built_and_run_offline() {
    let work = tempfile::tempdir().expect("temp dir");
    let target = work.path().join("cargo-target");
    let w = work.path();

    let valve = scaffold_and_build(w, &target, "valve", "valve");
    offline(
        &target,
        &valve,
        &["--request", "GET /app/counter", "--config", "greeting=hi"],
        &[
            "-> next (the request goes on to the next stage)",
            "response header x-hello: hi from node1",
        ],
    );
    // A health probe is left alone by the scaffolded valve.
    offline(
        &target,
        &valve,
        &[
            "--request",
            "GET /app/stats",
            "--header",
            "x-shoal-probe: health",
        ],
        &["-> next"],
    );

    // The session the first request creates is carried to the second.
    let app = scaffold_and_build(w, &target, "app", "valve");
    offline(
        &target,
        &app,
        &["--request", "GET /hi/visits", "--request", "GET /hi/visits"],
        &["visits=1 node=node1", "visits=2 node=node1", "visits=2"],
    );

    let filter = scaffold_and_build(w, &target, "url-filter", "url-filter");
    offline(
        &target,
        &filter,
        &[
            "--request",
            "GET /app/site.css",
            "--request",
            "GET /app/counter",
        ],
        &[
            "GET /app/site.css\n  -> filtered: the session is not replicated after it",
            "GET /app/counter\n  -> may touch the session (replicates as usual)",
        ],
    );

    let interceptor = scaffold_and_build(w, &target, "interceptor", "channel-interceptor");
    offline(
        &target,
        &interceptor,
        &["--message", "hello"],
        &[
            "message \"hello\" (5 bytes)",
            "send    -> passed unchanged",
            "receive -> passed unchanged",
        ],
    );

    let hook = scaffold_and_build(w, &target, "deploy-hook", "deploy-hook");
    offline(
        &target,
        &hook,
        &[
            "--config",
            "max-size=100",
            "--artifact",
            "big.war:1000",
            "--artifact",
            "small.war:10",
        ],
        &[
            "artifact big.war (1000 bytes)\n  -> vetoed: big.war is 1000 bytes, over the limit of 100",
            "artifact small.war (10 bytes)\n  -> allowed",
        ],
    );

    // The URL filter's crate now says it is a valve: build refuses it, naming both worlds.
    let manifest = Path::new(&filter).join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).expect("Cargo.toml");
    assert!(text.contains("kind = \"url-filter\""), "{text}");
    std::fs::write(
        &manifest,
        text.replace("kind = \"url-filter\"", "kind = \"valve\""),
    )
    .expect("write Cargo.toml");
    let out = plugin(&target, &["build", &filter]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a wrong world was built: {err}");
    assert!(
        err.contains("declares the valve world") && err.contains("exports the url-filter world"),
        "{err}"
    );
}
