//! A non-Rust route: a URL filter written in Python (plugins/python/url-filter/app.py),
//! componentized with componentize-py, loads and answers. Skipped, with the reason printed,
//! where componentize-py is not installed (`pip install componentize-py`).
mod common;
use common::*;
use shoal_plugin_host::{
    EngineOptions, FailurePolicy, Limits, PluginRegistry, PluginSpec, PluginWorld,
};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn python_url_filter_loads_and_answers() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let app_dir = root.join("plugins/python/url-filter");
    // componentize-py takes ~20 s: reuse its output while app.py and the WIT are unchanged.
    let component = root.join(format!(
        "plugins/target/python/url-filter-{}.component.wasm",
        source_digest(&root)
    ));
    if !component.is_file() {
        if let Some(parent) = component.parent() {
            std::fs::create_dir_all(parent).expect("create plugins/target/python");
        }
        let built = Command::new("componentize-py")
            .current_dir(&app_dir)
            .arg("-d")
            .arg(root.join("wit"))
            .args(["-w", "url-filter", "componentize", "app", "-o"])
            .arg(&component)
            .output();
        match built {
            Err(e) => panic!(
                "componentize-py not runnable ({e}): install it with `pip install componentize-py==0.25.1` (scripts/prereqs.sh does)"
            ),
            Ok(o) if !o.status.success() => panic!(
                "componentize-py failed: {}",
                String::from_utf8_lossy(&o.stderr)
            ),
            Ok(_) => {}
        }
    }
    let bytes = std::fs::read(&component).expect("read the Python component");
    // CPython is large: keep its compiled code between runs.
    let cache = root.join("plugins/target/wasmtime-cache");
    let options = EngineOptions {
        cache_dir: Some(cache),
        ..EngineOptions::default()
    };
    let reg = PluginRegistry::new(options, facts()).expect("engine");
    let limits = Limits {
        memory_bytes: 128 << 20,
        call_timeout: Duration::from_secs(5),
        ..Limits::default()
    };
    let spec = PluginSpec {
        config: config(&[("suffixes", ".css,.ico")]),
        limits,
        policy: FailurePolicy::FailClosed,
        world: Some(PluginWorld::UrlFilter),
    };
    let started = Instant::now();
    reg.load("py-filter", &bytes, spec)
        .expect("load the Python component (imports WASI: granted nothing)");
    println!(
        "python component: {} bytes, loaded in {:?}",
        bytes.len(),
        started.elapsed()
    );
    assert!(!reg
        .url_filter("py-filter", &get("/app/site.css", ""))
        .expect("call"));
    assert!(reg
        .url_filter("py-filter", &get("/app/counter", ""))
        .expect("call"));
    assert_eq!(
        reg.info("py-filter").expect("info").failures,
        Default::default()
    );
}

/// SHA-256 over app.py and every WIT file.
fn source_digest(root: &std::path::Path) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    let mut files = vec![root.join("plugins/python/url-filter/app.py")];
    let mut wit: Vec<PathBuf> = std::fs::read_dir(root.join("wit"))
        .expect("read wit/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    wit.sort();
    files.extend(wit);
    for f in files {
        hasher.update(std::fs::read(&f).unwrap_or_default());
    }
    hex::encode(&hasher.finalize()[..8])
}
