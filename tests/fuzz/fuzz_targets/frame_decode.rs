//! Feeds arbitrary bytes to the frame decoder the way a connection reader does: decode
//! frames from the front until it needs more bytes or reports an error. It must never panic,
//! never consume more than it was given, and never allocate beyond the frame limit; every
//! frame it accepts encodes again to a frame that decodes to the same envelope.
//! Run: `scripts/fuzz.sh 60 frame_decode` (docs/fuzzing.md).
#![no_main]
use libfuzzer_sys::fuzz_target;
use shoal_cluster::FrameCodec;

fuzz_target!(|data: &[u8]| {
    let codec = FrameCodec::new(64 * 1024);
    let mut rest = data;
    while let Ok(Some((env, n))) = codec.decode(rest) {
        assert!(n > 0 && n <= rest.len());
        let mut again = Vec::new();
        codec
            .encode(&env, &mut again)
            .expect("a decoded frame encodes");
        let (back, m) = codec
            .decode(&again)
            .expect("a re-encoded frame decodes")
            .expect("whole frame");
        assert_eq!((back, m), (env, again.len()));
        rest = &rest[n..];
    }
});
