//! sticky-by-route HTTP balancer in front of shoal nodes
