//! The only `bindgen!`s of the project, kept private: callers use the host-side types of
//! [`crate::types`]. One module per world; the interfaces they share are generated once
//! (in `valve`) and reused by the others through `with`.
//!
//! Two package versions are linked side by side (see plugins/README.md, "Versions"):
//! the current `shoal:plugin@0.2.0` (`wit/`) at the top of this module, and the frozen
//! `shoal:plugin@0.1.0` (`wit/v0.1.0/`) in [`v0_1`]. Every version's host imports are in
//! the linker; a component is instantiated with the typed template of the version it
//! imports (`super::Pre`).
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

/// `shoal:plugin@0.1.0`, frozen. Its host imports (`host`, `types`, `http`, `channel`,
/// `deploy`) are implemented in `v0_1.rs` by converting to and from the current ones. Of
/// its worlds only `channel-interceptor` differs from 0.2.0 (`send-verdict` gained
/// `narrow`) and needs its own typed template; valve, url-filter and deploy-hook export
/// the same functions with the same shapes, so the current templates serve them (component
/// types are structural, and the `session` resource is the same host type in both).
pub(crate) mod v0_1 {
    pub(crate) mod valve {
        wasmtime::component::bindgen!({
            path: "../../wit/v0.1.0",
            world: "valve",
            ownership: Borrowing { duplicate_if_necessary: true },
            with: { "shoal:plugin/http.session": crate::session::SessionResource },
        });
    }

    pub(crate) mod interceptor {
        wasmtime::component::bindgen!({
            path: "../../wit/v0.1.0",
            world: "channel-interceptor",
            with: {
                "shoal:plugin/types": super::valve::shoal::plugin::types,
                "shoal:plugin/host": super::valve::shoal::plugin::host,
            },
        });
    }

    pub(crate) mod deploy {
        wasmtime::component::bindgen!({
            path: "../../wit/v0.1.0",
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
}
