//! [`AdminBackend`] for [`NodeBackend`]: each method moves its arguments into a boxed
//! future and calls the module that does the work.
use super::plugins::config_pairs;
use super::NodeBackend;
use crate::plugins::ControlOp;
use shoal_admin::dto::*;
use shoal_admin::{rules, AdminBackend, ArtifactBody, BackendError, BackendResult};
use tokio::sync::broadcast;

fn ready<T: Send + 'static>(r: Result<T, BackendError>) -> BackendResult<'static, T> {
    Box::pin(std::future::ready(r))
}

impl AdminBackend for NodeBackend {
    fn local_node(&self) -> BackendResult<'_, LocalNode> {
        let contexts = self
            .node
            .http
            .contexts()
            .iter()
            .map(|c| super::sessions::api_name(&c.path))
            .collect();
        ready(Ok(LocalNode {
            member: self.local_member(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            started_ms: self.started_ms,
            contexts,
        }))
    }

    fn members(&self) -> BackendResult<'_, Vec<Member>> {
        Box::pin(async move { Ok(self.member_list().await) })
    }

    fn health(&self) -> BackendResult<'_, Health> {
        Box::pin(async move { Ok(self.health_report().await) })
    }

    fn readiness(&self) -> BackendResult<'_, Readiness> {
        ready(Ok(self.readiness_report()))
    }

    fn drain_status(&self) -> BackendResult<'_, DrainStatus> {
        ready(Ok(self.drain_status_view()))
    }

    fn start_drain(&self) -> BackendResult<'_, DrainStatus> {
        ready(self.start_drain_now())
    }

    fn contexts(&self) -> BackendResult<'_, Vec<Context>> {
        ready(Ok(self.all_contexts()))
    }

    fn context(&self, name: &str) -> BackendResult<'_, Context> {
        ready(self.context_config(name).map(|c| self.context_view(&c)))
    }

    fn reorder_pipeline(&self, context: &str, order: Vec<String>) -> BackendResult<'_, Context> {
        let context = context.to_owned();
        Box::pin(async move {
            let ctx = self.context_config(&context)?;
            let current = self.pipeline(&ctx);
            let names: Vec<&str> = current.iter().map(|s| s.name.as_str()).collect();
            rules::check_same_names(&names, &order, "pipeline stage")?;
            // Native stages are fixed by the pipeline's construction; plugins run innermost.
            let moved_native = current
                .iter()
                .zip(&order)
                .any(|(cur, new)| cur.plugin.is_none() && cur.name != *new);
            if moved_native {
                return Err(BackendError::Conflict(format!(
                    "only plugin stages can be reordered (between ReplicationValve and app); native stages keep their place: [{}]",
                    names.join(", ")
                )));
            }
            let plugins: Vec<String> = order
                .into_iter()
                .filter(|n| current.iter().any(|s| s.name == *n && s.plugin.is_some()))
                .collect();
            self.apply(ControlOp::Reorder { order: plugins }, "reordered")
                .await?;
            Ok(self.context_view(&ctx))
        })
    }

    fn sessions(&self, context: &str, query: SessionQuery) -> BackendResult<'_, SessionPage> {
        ready(self.session_page(context, &query))
    }

    fn session(&self, context: &str, id: &str) -> BackendResult<'_, SessionDetail> {
        let (context, id) = (context.to_owned(), id.to_owned());
        Box::pin(async move { self.session_detail(&context, &id).await })
    }

    fn expire_session(&self, context: &str, id: &str) -> BackendResult<'_, ()> {
        let (context, id) = (context.to_owned(), id.to_owned());
        Box::pin(async move {
            let (ctx, svc) = self.service(&context)?;
            self.expire_one(&svc, &id).await?;
            self.emit(
                EventKind::Session,
                &id,
                format!("session {id} of {} expired by an operator", ctx.path),
            );
            Ok(())
        })
    }

    fn expire_all(&self, context: &str) -> BackendResult<'_, u64> {
        let context = context.to_owned();
        Box::pin(async move {
            let n = self.expire_all_of(&context).await?;
            self.emit(
                EventKind::Session,
                &context,
                format!("{n} sessions of {context} expired by an operator"),
            );
            Ok(n)
        })
    }

    fn session_counts(&self) -> BackendResult<'_, Vec<NodeSessionCount>> {
        ready(Ok(self.counts()))
    }

    fn manager_stats(&self, context: &str) -> BackendResult<'_, ManagerStats> {
        let context = context.to_owned();
        Box::pin(async move { self.stats_with_store(&context).await })
    }

    fn reset_stats(&self, context: &str) -> BackendResult<'_, ()> {
        ready(self.reset_stats_of(context))
    }

    fn channel(&self) -> BackendResult<'_, ChannelInfo> {
        Box::pin(async move { Ok(self.channel_info().await) })
    }

    fn reorder_interceptors(&self, order: Vec<String>) -> BackendResult<'_, ChannelInfo> {
        Box::pin(async move {
            let current: Vec<String> = self
                .node
                .channel
                .interceptors()
                .await
                .into_iter()
                .map(|l| l.name)
                .collect();
            let plugins = plugin_layer_order(&current, &order).map_err(BackendError::Conflict)?;
            if plugins.len() > 1 {
                let op = ControlOp::Reorder { order: plugins };
                let (_, results) = self
                    .node
                    .plugins
                    .apply_everywhere(&self.node.channel, op)
                    .await
                    .map_err(super::plugins::map_error)?;
                if let Some((n, Err(e))) = results.iter().find(|(_, r)| r.is_err()) {
                    tracing::warn!(node = %n, error = %e, "interceptor reorder not confirmed");
                }
            }
            Ok(self.channel_info().await)
        })
    }

    fn peer_traffic(&self) -> BackendResult<'_, Vec<PeerTraffic>> {
        Box::pin(async move { Ok(self.traffic().await) })
    }

    fn plugins(&self) -> BackendResult<'_, Vec<Plugin>> {
        let list = self.node.plugins.registry.list();
        ready(Ok(list.into_iter().map(|i| self.plugin_view(i)).collect()))
    }

    fn plugin(&self, name: &str) -> BackendResult<'_, Plugin> {
        ready(self.plugin_by_name(name))
    }

    fn load_plugin(&self, request: LoadPlugin) -> BackendResult<'_, Plugin> {
        Box::pin(async move { self.load(request).await })
    }

    fn configure_plugin(&self, name: &str, config: serde_json::Value) -> BackendResult<'_, Plugin> {
        let name = name.to_owned();
        Box::pin(async move {
            let config = config_pairs(&config)?;
            self.apply(
                ControlOp::Configure {
                    name: name.clone(),
                    config,
                },
                "reconfigured",
            )
            .await?;
            self.plugin_by_name(&name)
        })
    }

    fn set_plugin_enabled(&self, name: &str, enabled: bool) -> BackendResult<'_, Plugin> {
        let name = name.to_owned();
        Box::pin(async move {
            let verb = if enabled { "enabled" } else { "disabled" };
            self.apply(
                ControlOp::SetEnabled {
                    name: name.clone(),
                    enabled,
                },
                verb,
            )
            .await?;
            self.plugin_by_name(&name)
        })
    }

    fn reload_plugin(&self, name: &str) -> BackendResult<'_, Plugin> {
        let name = name.to_owned();
        Box::pin(async move {
            self.apply(
                ControlOp::Reload {
                    name: name.clone(),
                    bytes: None,
                },
                "reloaded",
            )
            .await?;
            self.plugin_by_name(&name)
        })
    }

    fn unload_plugin(&self, name: &str) -> BackendResult<'_, ()> {
        let name = name.to_owned();
        Box::pin(async move {
            self.apply(ControlOp::Unload { name: name.clone() }, "unloaded")
                .await?;
            self.lock().plugin_meta.remove(&name);
            Ok(())
        })
    }

    fn deployments(&self) -> BackendResult<'_, Vec<Deployment>> {
        ready(Ok(self.deployment_list()))
    }

    fn deployment(&self, name: &str) -> BackendResult<'_, Deployment> {
        ready(self.deployment_of(name))
    }

    fn deploy(&self, request: DeployRequest, body: ArtifactBody) -> BackendResult<'_, Deployment> {
        Box::pin(async move { self.deploy_artifact(request, body).await })
    }

    fn undeploy(&self, name: &str) -> BackendResult<'_, ()> {
        let name = name.to_owned();
        Box::pin(async move { self.undeploy_artifact(&name).await })
    }

    fn rollouts(&self) -> BackendResult<'_, Vec<Rollout>> {
        ready(Ok(self.rollout_list()))
    }

    fn rollback(&self, name: &str) -> BackendResult<'_, Deployment> {
        let name = name.to_owned();
        Box::pin(async move { self.rollback_artifact(&name).await })
    }

    fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    fn recent_events(&self, limit: usize) -> BackendResult<'_, Vec<Event>> {
        ready(Ok(self.events.recent(limit)))
    }

    fn metrics_text(&self) -> BackendResult<'_, String> {
        Box::pin(async move { Ok(self.metrics().await) })
    }
}

/// Checks a requested stack order against the current one and returns the plugin names of
/// the `wasm:` layers in their new order. Native layers come from every node's config and
/// must stay where they are (all nodes need the same stack, and a restart is how their
/// order changes); plugin layers may swap among the positions plugin layers hold.
fn plugin_layer_order(current: &[String], order: &[String]) -> Result<Vec<String>, String> {
    let mut sorted_cur: Vec<&String> = current.iter().collect();
    let mut sorted_req: Vec<&String> = order.iter().collect();
    sorted_cur.sort();
    sorted_req.sort();
    if sorted_cur != sorted_req {
        return Err(format!(
            "`order` must name every current interceptor exactly once; the stack is {current:?}"
        ));
    }
    for (pos, (cur, req)) in current.iter().zip(order).enumerate() {
        let plugin_slot = cur.starts_with("wasm:") && req.starts_with("wasm:");
        if cur != req && !plugin_slot {
            return Err(format!(
                "position {pos}: {req} cannot take the place of {cur}. Only plugin layers (wasm:*) move at run time, among the positions plugin layers hold; native layers follow [[cluster.interceptor]] in each node's config (change it and restart the nodes one at a time)"
            ));
        }
    }
    Ok(order
        .iter()
        .filter_map(|n| n.strip_prefix("wasm:"))
        .map(str::to_string)
        .collect())
}

#[cfg(test)]
mod reorder_tests {
    use super::plugin_layer_order;

    fn v(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn plugin_layers_swap_native_layers_stay() {
        let cur = v(&["Order", "wasm:a", "wasm:b", "TcpFailureDetector"]);
        let req = v(&["Order", "wasm:b", "wasm:a", "TcpFailureDetector"]);
        assert_eq!(plugin_layer_order(&cur, &req), Ok(v(&["b", "a"])));
        let moved_native = v(&["wasm:a", "Order", "wasm:b", "TcpFailureDetector"]);
        let e = plugin_layer_order(&cur, &moved_native)
            .err()
            .unwrap_or_default();
        assert!(e.contains("cannot take the place of Order"), "{e}");
        let missing = v(&["Order", "wasm:b", "TcpFailureDetector"]);
        let e = plugin_layer_order(&cur, &missing).err().unwrap_or_default();
        assert!(e.contains("exactly once"), "{e}");
        let dup = v(&["Order", "wasm:b", "wasm:b", "TcpFailureDetector"]);
        assert!(plugin_layer_order(&cur, &dup).is_err());
    }
}
