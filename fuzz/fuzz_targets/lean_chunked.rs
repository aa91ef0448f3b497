//! Where a chunked response body ends, differentially: the lean path relays a backend's
//! chunked body without decoding it and only scans for its end, so that the next response
//! on the kept-alive backend connection starts at the right byte. The input (after byte 0)
//! is a chunked body; when the lean scanner says it ends after `n` bytes, a hyper client
//! reading those `n` bytes and then a second response must read the body whole and then
//! exactly that second response: otherwise the two disagree on where a response ends (a
//! response-splitting bug). The scanner must also give the same answer whatever the size of
//! the pieces it is fed (byte 0), as reads split a body anywhere.
//! Run: `scripts/fuzz.sh 60 lean_chunked` (docs/fuzzing.md).
#![no_main]
use libfuzzer_sys::fuzz_target;
use shoal_balancer::fuzzing::chunked_end;
use shoal_fuzz::hyper_client_reads;

const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
const NEXT: &[u8] = b"HTTP/1.1 299 Next\r\ncontent-length: 5\r\n\r\nnext!";

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
    let seen = hyper_client_reads(&stream, 2);
    match &seen[..] {
        [Ok((200, _)), Ok((299, next))] if next == b"next!" => {}
        other => panic!(
            "the lean path ends this chunked body after {n} bytes, hyper reads {other:?}: {:?}",
            String::from_utf8_lossy(&body[..n])
        ),
    }
});
