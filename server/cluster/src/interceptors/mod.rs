//! Native interceptors. Each has a config struct with Tomcat's defaults (`Default`), a
//! `from_options` that rejects unknown keys, counters and a description for the admin API.
//!
//! | name | what | Tomcat |
//! |---|---|---|
//! | `Throughput` | tx/rx bytes, messages, errors | ThroughputInterceptor |
//! | `DomainFilter` | drop messages from other domains | DomainFilterInterceptor |
//! | `Order` | per-sender FIFO | OrderInterceptor |
//! | `Fragmentation` | split above 100 KiB, reassemble | FragmentationInterceptor |
//! | `Compression` (alias `Gzip`) | deflate | GzipInterceptor |
//! | `Encrypt` | AES-256-GCM, replay window | EncryptInterceptor |
//! | `Coordinator` | agreed member | NonBlockingCoordinator |
//! | `TcpFailureDetector`, `TcpPing` | settings of the node's failure detector | same |
//! | `StaticMembership`, `MessageDispatch` | settings read by shoal-net | same |
//!
//! Both ends must run the same message-transforming layers in the same order (they add
//! headers that the other side strips).
mod compression;
mod coordinator;
mod domain_filter;
mod encrypt;
mod fragmentation;
mod opts;
mod order;
mod props;
mod throughput;

pub use compression::{Compression, CompressionConfig};
pub use coordinator::{Coordinator, CoordinatorConfig};
pub use domain_filter::{DomainFilter, DomainFilterConfig};
pub use encrypt::{Encrypt, EncryptConfig};
pub use fragmentation::{Fragmentation, FragmentationConfig};
pub use order::{Order, OrderConfig};
pub use props::{configure_node, MessageDispatch, StaticMembership, TcpFailureDetector, TcpPing};
pub use throughput::{Throughput, ThroughputConfig};

use crate::interceptor::Interceptor;
use std::collections::BTreeMap;

/// Every name `build` accepts.
pub const NAMES: &[&str] = &[
    "Throughput",
    "DomainFilter",
    "Order",
    "Fragmentation",
    "Compression",
    "Gzip",
    "Encrypt",
    "Coordinator",
    "TcpFailureDetector",
    "TcpPing",
    "StaticMembership",
    "MessageDispatch",
];

/// Builds a native interceptor from its name and options (as read from the node's TOML
/// file). Unknown names and keys, and bad values, are errors that name them.
pub fn build(
    name: &str,
    options: &BTreeMap<String, String>,
) -> Result<Box<dyn Interceptor>, String> {
    let name = name.strip_suffix("Interceptor").unwrap_or(name);
    Ok(match name {
        "Throughput" => Box::new(Throughput::new(ThroughputConfig::from_options(options)?)),
        "DomainFilter" => Box::new(DomainFilter::new(DomainFilterConfig::from_options(
            options,
        )?)),
        "Order" => Box::new(Order::new(OrderConfig::from_options(options)?)),
        "Fragmentation" => Box::new(Fragmentation::new(FragmentationConfig::from_options(
            options,
        )?)),
        "Compression" | "Gzip" => {
            Box::new(Compression::new(CompressionConfig::from_options(options)?))
        }
        "Encrypt" => Box::new(Encrypt::new(
            EncryptConfig::from_options(options)?,
            rand::random(),
        )),
        "Coordinator" | "NonBlockingCoordinator" => {
            Box::new(Coordinator::new(CoordinatorConfig::from_options(options)?))
        }
        "TcpFailureDetector" => Box::new(TcpFailureDetector::from_options(options)?),
        "TcpPing" => Box::new(TcpPing::from_options(options)?),
        "StaticMembership" => Box::new(StaticMembership::from_options(options)?),
        "MessageDispatch" => Box::new(MessageDispatch::from_options(options)?),
        other => {
            return Err(format!(
                "unknown interceptor '{other}' (known: {})",
                NAMES.join(", ")
            ));
        }
    })
}
