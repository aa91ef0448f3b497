//! Native interceptors. Each is configurable and reports counters.
