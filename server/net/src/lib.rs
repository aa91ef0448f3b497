//! tokio side of the channel: TCP transport, discovery (static, multicast, DNS), timers driving shoal-cluster
