//! The tokio runtime around the sans-io managers.
//!
//! Data flows: the cluster ([`link::ClusterLink`]) → [`registry::SessionRegistry`] (one pump
//! per node: decodes, routes by context, ticks the sweepers) → [`service::SessionService`]
//! (one per context: locks the manager, feeds it, sends what it returns) → back out through
//! the link, synchronous sends awaited by the request, asynchronous ones through the ordered,
//! bounded [`async_queue`].
//!
//! [`persistent::PersistentService`] (one per persistent context, owned by its service) runs
//! the persistent core against its store. [`write_behind::WriteBehind`] (one per replicated
//! context with a store, owned by its service) saves what the node serves to the store.
//!
//! Imports, one way only: `registry` → `service` → `persistent`, `write_behind`, `async_queue` → `link`.
pub(crate) mod async_queue;
pub(crate) mod link;
pub(crate) mod persistent;
pub(crate) mod registry;
pub(crate) mod service;
pub(crate) mod write_behind;
