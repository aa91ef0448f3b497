//! Where a chunked body ends, differentially: the lean path relays a backend's chunked body
//! without decoding it and only scans for its end, so that the next message on the kept-alive
//! connection starts at the right byte. The input (after byte 0) is a chunked body; when the
//! lean scanner says it ends after `n` bytes, hyper (its HTTP/1.1 decoder, the one its client
//! and server share, driven here through the server) reading a message with those `n` bytes
//! as its chunked body and then a second message must read the body whole and then exactly
//! that second message: otherwise the two disagree on where a message ends (a response
//! splitting or smuggling bug). The scanner must also give the same answer whatever the size
//! of the pieces it is fed (byte 0), as reads split a body anywhere.
//! Run: `scripts/fuzz.sh 60 lean_chunked` (docs/fuzzing.md).
#![no_main]
use libfuzzer_sys::fuzz_target;
use shoal_balancer::fuzzing::chunked_end;
use shoal_fuzz::hyper_server_reads;

const HEAD: &[u8] = b"POST /first HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n";
const NEXT: &[u8] = b"GET /next HTTP/1.1\r\nhost: a\r\n\r\n";

fuzz_target!(|data: &[u8]| {
    let Some((&step, body)) = data.split_first() else {
        return;
    };
    let whole = chunked_end(body, 0);
    let pieces = chunked_end(body, usize::from(step % 16) + 1);
    assert_eq!(
        whole, pieces,
        "the scanner's answer depends on how the body is split"
    );
    let Ok(Some(n)) = whole else {
        return;
    };
    assert!(n > 0 && n <= body.len());
    let mut stream = HEAD.to_vec();
    stream.extend_from_slice(&body[..n]);
    stream.extend_from_slice(NEXT);
    let seen = hyper_server_reads(&stream);
    // hyper refusing the body's content (a trailer or an extension its parser finds
    // malformed) is no disagreement on framing: it answers 400 and closes. A body it is still
    // reading when the input ends, or a second message it does not see as sent, is.
    if let [first, ..] = &seen[..] {
        if matches!(&first.body, Err(e) if e != shoal_fuzz::BODY_NEVER_ENDED) {
            return;
        }
    }
    let ok = matches!(
        &seen[..],
        [first, next] if first.body.is_ok() && next.target == "/next" && next.body == Ok(Vec::new())
    );
    assert!(
        ok,
        "the lean path ends this chunked body after {n} bytes, hyper reads {seen:?}: {:?}",
        String::from_utf8_lossy(&body[..n])
    );
});
