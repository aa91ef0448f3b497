//! The only `bindgen!` of the project, kept private: callers use the host-side types of
//! [`crate::types`]. One module per world; the interfaces they share are generated once
//! (in `valve`) and reused by the others through `with`.
#![allow(missing_docs, clippy::all)]

pub(crate) mod valve {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "valve",
        ownership: Borrowing { duplicate_if_necessary: true },
        with: { "shoal:plugin/http.session": crate::session::SessionResource },
    });
}

pub(crate) mod url_filter {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "url-filter",
        ownership: Borrowing { duplicate_if_necessary: true },
        with: {
            "shoal:plugin/types": super::valve::shoal::plugin::types,
            "shoal:plugin/host": super::valve::shoal::plugin::host,
            "shoal:plugin/http": super::valve::shoal::plugin::http,
        },
    });
}

pub(crate) mod interceptor {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "channel-interceptor",
        with: {
            "shoal:plugin/types": super::valve::shoal::plugin::types,
            "shoal:plugin/host": super::valve::shoal::plugin::host,
        },
    });
}

pub(crate) mod deploy {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "deploy-hook",
        with: {
            "shoal:plugin/types": super::valve::shoal::plugin::types,
            "shoal:plugin/host": super::valve::shoal::plugin::host,
        },
    });
}

pub(crate) use deploy::shoal::plugin::deploy as deploy_types;
pub(crate) use interceptor::shoal::plugin::channel;
pub(crate) use valve::shoal::plugin::{host, http, types};
