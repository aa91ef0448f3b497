//! Links the `shoal` binary with its debug sections compressed (zlib): the line tables that
//! let a panic's backtrace name file and line stay in the one file, at ~1/4 of their size
//! (issue 15 item 4). Rust's backtrace reads zlib-compressed sections; it does not read zstd
//! ones (checked with rustc 1.95: names only, no file:line), hence zlib.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // GNU ld, gold and lld (Rust's default linker on x86_64 Linux) all take the flag.
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-Wl,--compress-debug-sections=zlib");
    }
}
