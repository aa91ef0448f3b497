//! The node's TOML file, read as `shoal node --config FILE` reads it: shoal-config's
//! `Config::parse` and `Config::apply` (the binary calls the same), then the channel settings
//! and the interceptor stack the node builds from it. Any text must give a config or an
//! error that names the file; nothing may panic.
//! Run: `scripts/fuzz.sh 60 node_config` (docs/fuzzing.md).
#![no_main]
use libfuzzer_sys::fuzz_target;
use shoal_config::{Config, Overrides};
use std::path::{Path, PathBuf};

const FILE: &str = "fuzz-node.toml";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = PathBuf::from(FILE);
    let mut cfg = match Config::parse(text, Path::new(FILE)) {
        Ok(c) => c,
        Err(e) => return names_the_file(&e),
    };
    if let Err(e) = cfg.apply(&Overrides::default(), &Some(path)) {
        return names_the_file(&e);
    }
    let _ = cfg.cluster.settings(cfg.cluster.secret.clone());
    let mut stack = shoal_cluster::InterceptorStack::default();
    for ic in &cfg.cluster.interceptor {
        if let Ok(layer) = shoal_cluster::interceptors::build(&ic.name, &ic.options) {
            let _ = stack.push(layer);
        }
    }
});

fn names_the_file(e: &anyhow::Error) {
    assert!(
        e.to_string().contains(FILE),
        "an error that does not name the file: {e:#}"
    );
}
