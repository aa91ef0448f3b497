//! Changes of the live interceptor stack, carried out by the driver between two messages.
//!
//! Why this is safe for messages in flight: the driver is the stack's only user and runs
//! each message through the whole stack in one step (a send in `Node::send`, a received
//! frame in `Node::handle_frame`, heartbeat releases in `Node::handle_timeout`). A change
//! lands between two such steps, so every message goes through either the old stack or the
//! new one, never half of each, and none is lost or processed twice by the change.
//! A message held by a layer (Order waiting for a gap, fragments being reassembled) keeps
//! its place: when released it continues from the layer above the one that held it, so a
//! layer inserted below the holder never sees it (it is already past that point) and a
//! layer inserted above does. A removed layer is dropped with whatever it holds (plugin
//! layers hold nothing).
use super::Driver;
use crate::command::StackChange;
use shoal_cluster::StackError;
use std::time::Instant;

impl Driver {
    pub(crate) fn change_stack(
        &mut self,
        now: Instant,
        change: StackChange,
    ) -> Result<(), StackError> {
        match change {
            StackChange::Insert {
                position,
                mut layer,
            } => {
                // Members already in the view produce no event for a layer inserted now.
                let members = self
                    .shared
                    .members
                    .read()
                    .map(|m| m.clone())
                    .unwrap_or_default();
                for m in &members {
                    layer.member_added(now, m);
                }
                let stack = self.node.stack_mut();
                let at = position.unwrap_or(stack.len());
                let name = layer.name().to_string();
                stack.insert(at, layer)?;
                tracing::info!(layer = %name, position = at, "interceptor inserted into the live stack");
                Ok(())
            }
            StackChange::Remove(name) => {
                drop(self.node.stack_mut().remove(&name)?);
                tracing::info!(layer = %name, "interceptor removed from the live stack");
                Ok(())
            }
            StackChange::Reorder(names) => {
                let stack = self.node.stack_mut();
                let full = reordered(&stack.names(), &names)?;
                let refs: Vec<&str> = full.iter().map(String::as_str).collect();
                stack.reorder(&refs)?;
                tracing::info!(order = ?full, "interceptor stack reordered");
                Ok(())
            }
        }
    }
}

/// The whole stack's order after moving `names`, in their given order, into the positions
/// they occupy together; the other layers keep their place.
fn reordered(current: &[String], names: &[String]) -> Result<Vec<String>, StackError> {
    let mut slots = Vec::with_capacity(names.len());
    for (i, n) in names.iter().enumerate() {
        if names[..i].contains(n) {
            return Err(StackError::Duplicate(n.clone()));
        }
        let at = current
            .iter()
            .position(|c| c == n)
            .ok_or_else(|| StackError::NotFound(n.clone()))?;
        slots.push(at);
    }
    slots.sort_unstable();
    let mut full = current.to_vec();
    for (slot, name) in slots.into_iter().zip(names) {
        full[slot] = name.clone();
    }
    Ok(full)
}

#[cfg(test)]
mod tests {
    use super::reordered;

    fn v(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn reorder_moves_only_the_named_layers_within_their_slots() {
        let cur = v(&["Order", "wasm:a", "Throughput", "wasm:b"]);
        assert_eq!(
            reordered(&cur, &v(&["wasm:b", "wasm:a"])),
            Ok(v(&["Order", "wasm:b", "Throughput", "wasm:a"]))
        );
        assert_eq!(reordered(&cur, &v(&["wasm:a"])), Ok(cur.clone()));
        assert!(reordered(&cur, &v(&["wasm:a", "wasm:a"])).is_err());
        assert!(reordered(&cur, &v(&["wasm:x"])).is_err());
    }
}
