//! A URL filter built against the frozen `shoal:plugin@0.1.0` (`wit/v0.1.0`), with
//! wit-bindgen directly. Requests whose path ends with the configured `suffix` (default
//! `.css`) do not touch the session; every call is counted (`calls`).
// Generated export glue takes one argument per flattened field.
#![allow(clippy::too_many_arguments)]

wit_bindgen::generate!({
    world: "url-filter",
    path: "../../../wit/v0.1.0",
});

use shoal::plugin::host;

struct Legacy;

impl Guest for Legacy {
    fn may_touch_session(req: Request) -> bool {
        host::counter_add("calls", 1);
        let suffix = host::config_get("suffix").unwrap_or_else(|| ".css".into());
        !req.path.ends_with(&suffix)
    }
}

export!(Legacy);
