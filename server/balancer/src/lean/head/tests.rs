use super::request::*;
use super::response::*;
use super::syntax::*;

const RULES: Rules<'static> = Rules {
    cookie_name: "JSESSIONID",
    session_header: "X-Shoal-Session",
    status_path: "/balancer/status",
    max_replay_body: 64,
};

struct Parsed {
    head: ReqHead,
    out: String,
    route: String,
    method: String,
}

fn parse(raw: &str) -> Parsed {
    let (mut out, mut route, mut method) = (Vec::new(), String::new(), String::new());
    let head = parse_request(
        raw.as_bytes(),
        &RULES,
        "10.0.0.9",
        &mut out,
        &mut route,
        &mut method,
    );
    let out = String::from_utf8(out).expect("ascii head");
    Parsed {
        head,
        out,
        route,
        method,
    }
}

fn ready(p: &Parsed) -> Request {
    match p.head {
        ReqHead::Ready(r) => r,
        ref other => panic!("not ready: {other:?}"),
    }
}

#[test]
fn request_is_rewritten_for_the_backend() {
    let raw = "POST /app/counter?x=1 HTTP/1.1\r\nHost: lb\r\nConnection: keep-alive, X-Hop\r\n\
               X-Hop: 1\r\nKeep-Alive: timeout=5\r\nX-Forwarded-For: 1.2.3.4\r\n\
               Cookie: a=b; JSESSIONID=ABC.node2\r\nContent-Length: 3\r\n\r\nabcGET";
    let p = parse(raw);
    let r = ready(&p);
    assert_eq!(r.head_len, raw.len() - 6);
    assert_eq!((r.body_len, r.keep_alive, r.status), (3, true, false));
    assert_eq!((p.route.as_str(), p.method.as_str()), ("node2", "POST"));
    assert_eq!(
        p.out,
        "POST /app/counter?x=1 HTTP/1.1\r\nHost: lb\r\nCookie: a=b; JSESSIONID=ABC.node2\r\n\
         Content-Length: 3\r\nx-forwarded-for: 1.2.3.4, 10.0.0.9\r\nx-forwarded-proto: http\r\n\r\n"
    );
}

#[test]
fn route_from_header_then_path_and_close_is_noticed() {
    let p =
        parse("GET / HTTP/1.1\r\nHost: h\r\nX-Shoal-Session: A.node3\r\nConnection: close\r\n\r\n");
    assert_eq!(p.route, "node3");
    assert!(!ready(&p).keep_alive);
    let p = parse(
        "GET /app;jsessionid=A.node1 HTTP/1.1\r\nHost: h\r\nX-Forwarded-Proto: https\r\n\r\n",
    );
    assert_eq!(p.route, "node1");
    assert!(p.out.contains("X-Forwarded-Proto: https\r\n") && !p.out.contains("proto: http\r\n"));
    let p = parse("HEAD /balancer/status?pretty HTTP/1.1\r\nHost: h\r\n\r\n");
    let r = ready(&p);
    assert!(r.status && r.head_method);
    assert_eq!(p.route, "");
}

#[test]
fn partial_heads_wait_and_bad_ones_are_rejected() {
    assert_eq!(
        parse("GET / HTTP/1.1\r\nHost: h\r\n").head,
        ReqHead::Partial
    );
    match parse("GET / HTTP/1.1\r\nHo st: h\r\n\r\n").head {
        ReqHead::Reject(400, why) => assert!(why.contains("malformed request head"), "{why}"),
        other => panic!("{other:?}"),
    }
    match parse("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: x\r\n\r\n").head {
        ReqHead::Reject(400, why) => assert!(why.contains("Content-Length"), "{why}"),
        other => panic!("{other:?}"),
    }
    let huge = format!("GET / HTTP/1.1\r\nCookie: {}\r\n", "x".repeat(MAX_HEAD));
    assert!(matches!(parse(&huge).head, ReqHead::Reject(431, _)));
    let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: v\r\n")).collect();
    let p = parse(&format!("GET / HTTP/1.1\r\n{many}\r\n"));
    assert!(matches!(p.head, ReqHead::Reject(431, _)), "{:?}", p.head);
}

#[test]
fn unusual_requests_go_to_the_hyper_path() {
    for raw in [
        "GET / HTTP/1.0\r\nHost: h\r\n\r\n",
        "GET http://h/ HTTP/1.1\r\nHost: h\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 65\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n",
    ] {
        assert!(matches!(parse(raw).head, ReqHead::Fallback(_)), "{raw}");
    }
}

fn response(raw: &str, head_request: bool, keep_alive: bool) -> (RespHead, String) {
    let mut out = Vec::new();
    let r = parse_response(raw.as_bytes(), head_request, keep_alive, "node1", &mut out);
    (r, String::from_utf8(out).expect("ascii"))
}

#[test]
fn response_framing_and_rewrite() {
    let (r, out) = response(
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\nX-Shoal-Backend: x\r\n\r\nok",
        false,
        true,
    );
    let RespHead::Ready(r) = r else {
        panic!("{r:?}")
    };
    assert_eq!(
        (r.body, r.reusable, r.close_client),
        (RespBody::Length(2), true, false)
    );
    assert_eq!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nx-shoal-backend: node1\r\n\r\n"
    );

    let (r, out) = response(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n",
        false,
        false,
    );
    let RespHead::Ready(r) = r else {
        panic!("{r:?}")
    };
    assert_eq!((r.body, r.close_client), (RespBody::Chunked, true));
    assert_eq!(
        out,
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nx-shoal-backend: node1\r\nconnection: close\r\n\r\n"
    );

    let (r, _) = response("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true, true);
    assert!(matches!(
        r,
        RespHead::Ready(Response {
            body: RespBody::Empty,
            ..
        })
    ));
    let (r, out) = response("HTTP/1.0 200 OK\r\n\r\n", false, true);
    let RespHead::Ready(r) = r else {
        panic!("{r:?}")
    };
    assert_eq!(
        (r.body, r.reusable, r.close_client),
        (RespBody::UntilClose, false, true)
    );
    assert!(out.ends_with("connection: close\r\n\r\n"));
    let (r, _) = response("HTTP/1.1 100 Continue\r\n\r\n", false, true);
    assert!(matches!(r, RespHead::Ready(Response { interim: true, .. })));
    let (r, _) = response(
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        false,
        true,
    );
    assert!(matches!(r, RespHead::Bad(_)));
    let (r, _) = response(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        false,
        true,
    );
    assert!(matches!(r, RespHead::Bad(_)));
    let (r, _) = response("HTTP/1.1 200 OK\r\n", false, true);
    assert_eq!(r, RespHead::Partial);
}

#[test]
fn a_503_marked_refused_is_noticed_and_nothing_else_is() {
    let refused = |text: &str| match response(text, false, true).0 {
        RespHead::Ready(r) => r.refused,
        other => panic!("{other:?}"),
    };
    assert!(refused(
        "HTTP/1.1 503 Service Unavailable\r\nX-Shoal-Refused: no-quorum\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n"
    ));
    assert!(!refused(
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n"
    ));
    assert!(!refused(
        "HTTP/1.1 200 OK\r\nX-Shoal-Refused: no-quorum\r\nContent-Length: 0\r\n\r\n"
    ));
}
