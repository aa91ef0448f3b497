//! A standard `wasi:http` application that also uses shoal's session: see README.md.
wit_bindgen::generate!({
    path: "../../../wit/http-app",
    world: "shoal:http-app/http-app",
    generate_all,
});

use exports::wasi::http::incoming_handler::Guest;
use shoal::http_app::session;
use wasi::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

struct HelloHttp;

impl Guest for HelloHttp {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        let path = path.split('?').next().unwrap_or("");
        let (status, body) = if path.ends_with("/counter") {
            let n = session::get("counter")
                .and_then(|v| String::from_utf8(v).ok())
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0)
                + 1;
            let id = session::create();
            session::set("counter", n.to_string().as_bytes());
            (200, format!("counter={n} session={id}\n"))
        } else if path.ends_with("/hello") {
            (200, "hello from wasi:http\n".to_string())
        } else if path.ends_with("/loop") {
            let mut i: u64 = 0;
            loop {
                i = std::hint::black_box(i.wrapping_add(1));
            }
        } else if path.ends_with("/trap") {
            panic!("asked to trap");
        } else {
            (404, format!("no route {path}\n"))
        };
        respond(response_out, status, body.as_bytes());
    }
}

fn respond(out: ResponseOutparam, status: u16, body: &[u8]) {
    let headers = Fields::new();
    let _ = headers.append("content-type", b"text/plain");
    let response = OutgoingResponse::new(headers);
    let _ = response.set_status_code(status);
    let Ok(outgoing) = response.body() else {
        return;
    };
    ResponseOutparam::set(out, Ok(response));
    if let Ok(stream) = outgoing.write() {
        for chunk in body.chunks(4096) {
            if stream.blocking_write_and_flush(chunk).is_err() {
                break;
            }
        }
    }
    let _ = OutgoingBody::finish(outgoing, None);
}

export!(HelloHttp);
