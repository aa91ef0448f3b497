//! A valve built against the frozen `shoal:plugin@0.1.0` (`wit/v0.1.0`), with wit-bindgen
//! directly. `GET <anything>/visits` counts visits in the session (creating it) and answers
//! `visits=N`; other requests pass with the response header `x-legacy: 0.1.0`.
// Generated export glue takes one argument per flattened field.
#![allow(clippy::too_many_arguments)]

wit_bindgen::generate!({
    world: "valve",
    path: "../../../wit/v0.1.0",
});

use shoal::plugin::host;
use shoal::plugin::http::{NextStep, Response};

struct Legacy;

impl Guest for Legacy {
    fn wants_body() -> bool {
        false
    }

    fn handle(req: Request, session: &Session) -> Outcome {
        if !req.path.ends_with("/visits") {
            return Outcome::Next(NextStep {
                set_request_headers: vec![],
                add_response_headers: vec![("x-legacy".into(), "0.1.0".into())],
            });
        }
        session.create();
        let visits = session
            .get("visits")
            .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
            .map_or(0, u64::from_le_bytes)
            + 1;
        session.set("visits", &visits.to_le_bytes());
        host::counter_add("visits", 1);
        Outcome::Respond(Response {
            status: 200,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: format!("visits={visits}").into_bytes(),
        })
    }
}

export!(Legacy);
