//! Feeds arbitrary bytes to the frame decoder the way a connection reader does: decode
//! frames from the front until it needs more bytes or reports an error. It must never panic,
//! never consume more than it was given, and never allocate beyond the frame limit.
//! Run: `cd server/cluster/fuzz && cargo +nightly fuzz run frame_decode`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use shoal_cluster::FrameCodec;

fuzz_target!(|data: &[u8]| {
    let codec = FrameCodec::new(64 * 1024);
    let mut rest = data;
    while let Ok(Some((_env, n))) = codec.decode(rest) {
        assert!(n > 0 && n <= rest.len());
        rest = &rest[n..];
    }
});
