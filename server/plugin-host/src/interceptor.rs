//! A Wasm channel interceptor as one more layer of the cluster's interceptor stack.
use crate::calls::{truncate, world_mismatch};
use crate::error::PluginError;
use crate::generation::Live;
use crate::plugin::Answer;
use crate::registry::PluginRegistry;
use crate::types::PluginWorld;
use crate::wit::bindings::channel::{self, ReceiveVerdict, SendVerdict};
use crate::wit::bindings::types;
use crate::wit::Exports;
use shoal_cluster::{ChannelMessage, Interceptor, InterceptorError, Member};
use std::sync::Arc;
use std::time::Instant;

/// Calls the interceptor plugin `name` of a registry. Reloads take effect on the next
/// message; if the plugin is unloaded, messages pass untouched.
pub struct WasmInterceptor {
    registry: Arc<PluginRegistry>,
    plugin: String,
    /// `wasm:<plugin>`, as shown in the stack's listing.
    label: String,
}

impl PluginRegistry {
    /// A stack layer backed by the interceptor plugin `name`.
    pub fn interceptor(self: &Arc<Self>, name: &str) -> Result<WasmInterceptor, PluginError> {
        let info = self.info(name)?;
        if info.world != PluginWorld::ChannelInterceptor {
            return Err(PluginError::WrongWorld {
                name: name.to_string(),
                expected: PluginWorld::ChannelInterceptor,
                found: info.world,
            });
        }
        Ok(WasmInterceptor {
            registry: self.clone(),
            plugin: name.to_string(),
            label: format!("wasm:{name}"),
        })
    }
}

/// The message's fields as the interceptor's record takes them; the payload is moved in and
/// back out (not copied) unless the plugin rewrites it.
struct Fields {
    id: u64,
    from: String,
    destinations: Vec<String>,
    options: u32,
}

impl Fields {
    fn of(msg: &ChannelMessage) -> Fields {
        Fields {
            id: msg.id,
            from: msg.from.to_hex(),
            destinations: msg.destinations.iter().map(|d| d.to_hex()).collect(),
            options: msg.options.0,
        }
    }
}

enum Verdict {
    Send(SendVerdict),
    Receive(ReceiveVerdict),
}

/// Calls `on-send` (`send` true) or `on-receive`, whichever WIT version `live` is (see
/// [`crate::wit::ChannelInterceptor`]), lending it `payload` for the call.
fn call_message(
    live: &mut Live,
    f: Fields,
    payload: &mut Vec<u8>,
    send: bool,
) -> wasmtime::Result<Verdict> {
    let Exports::Interceptor(i) = &live.exports else {
        return Err(world_mismatch());
    };
    let mut m = channel::Message {
        id: f.id,
        from: f.from,
        destinations: f.destinations,
        options: f.options,
        payload: std::mem::take(payload),
    };
    let r = if send {
        i.call_on_send(&mut live.store, &mut m).map(Verdict::Send)
    } else {
        i.call_on_receive(&mut live.store, &mut m)
            .map(Verdict::Receive)
    };
    *payload = m.payload;
    r
}

impl WasmInterceptor {
    fn notify(&self, call: impl FnOnce(&mut Live) -> wasmtime::Result<()>) {
        // Failures are counted and logged by `run`; a notification has no answer to give.
        let _ = self.registry.run(
            &self.plugin,
            PluginWorld::ChannelInterceptor,
            |live, _| call(live),
            |_, _| Ok(()),
        );
    }

    fn member_event(&self, member: &Member, added: bool) {
        let info = member_info(member);
        self.notify(|live| match &live.exports {
            Exports::Interceptor(i) if added => i.call_member_added(&mut live.store, &info),
            Exports::Interceptor(i) => i.call_member_disappeared(&mut live.store, &info),
            _ => Err(world_mismatch()),
        });
    }
}

fn member_info(m: &Member) -> types::MemberInfo {
    types::MemberInfo {
        id: m.id.to_hex(),
        name: m.name.clone(),
        address: m.addr.to_string(),
        domain: m.domain.clone(),
    }
}

fn check_payload(payload: Option<&Vec<u8>>, max: usize) -> Result<(), String> {
    match payload {
        Some(p) if p.len() > max => Err(format!(
            "rewritten payload of {} bytes, over the limit of {max}",
            p.len()
        )),
        _ => Ok(()),
    }
}

impl Interceptor for WasmInterceptor {
    fn name(&self) -> &str {
        &self.label
    }

    fn option_flag(&self) -> u32 {
        self.registry
            .lookup(&self.plugin)
            .ok()
            .and_then(|p| p.generation())
            .map_or(0, |v| v.option_flag)
    }

    fn on_send(
        &mut self,
        _now: Instant,
        mut msg: ChannelMessage,
        out: &mut Vec<ChannelMessage>,
    ) -> Result<(), InterceptorError> {
        let fields = Fields::of(&msg);
        let mut payload = std::mem::take(&mut msg.payload);
        let result = self.registry.run(
            &self.plugin,
            PluginWorld::ChannelInterceptor,
            |live, _| match call_message(live, fields, &mut payload, true)? {
                Verdict::Send(v) => Ok(v),
                Verdict::Receive(_) => Err(world_mismatch()),
            },
            |verdict, version| {
                let payload = match verdict {
                    SendVerdict::Rewrite(p) => Some(p),
                    _ => None,
                };
                check_payload(payload, version.limits.max_output_bytes)
            },
        );
        msg.payload = payload;
        match result {
            Ok(Ok(SendVerdict::Pass)) | Ok(Err(Answer::Skip)) | Err(_) => out.push(msg),
            Ok(Ok(SendVerdict::Rewrite(payload))) => out.push(ChannelMessage { payload, ..msg }),
            Ok(Ok(SendVerdict::Narrow(ids))) => {
                msg.destinations.retain(|d| ids.contains(&d.to_hex()));
                if !msg.destinations.is_empty() {
                    out.push(msg);
                }
            }
            Ok(Ok(SendVerdict::Drop)) => {}
            Ok(Ok(SendVerdict::Error(mut reason))) => {
                truncate(&mut reason, 1024);
                return Err(InterceptorError::new(&self.label, reason));
            }
            Ok(Err(Answer::Closed)) => {
                return Err(InterceptorError::new(
                    &self.label,
                    "the plugin failed and its policy drops the message",
                ));
            }
        }
        Ok(())
    }

    fn on_receive(
        &mut self,
        _now: Instant,
        mut msg: ChannelMessage,
        out: &mut Vec<ChannelMessage>,
    ) -> Result<(), InterceptorError> {
        let fields = Fields::of(&msg);
        let mut payload = std::mem::take(&mut msg.payload);
        let result = self.registry.run(
            &self.plugin,
            PluginWorld::ChannelInterceptor,
            |live, _| match call_message(live, fields, &mut payload, false)? {
                Verdict::Receive(v) => Ok(v),
                Verdict::Send(_) => Err(world_mismatch()),
            },
            |verdict, version| {
                let payload = match verdict {
                    ReceiveVerdict::Rewrite(p) => Some(p),
                    _ => None,
                };
                check_payload(payload, version.limits.max_output_bytes)
            },
        );
        msg.payload = payload;
        match result {
            Ok(Ok(ReceiveVerdict::Pass)) | Ok(Err(Answer::Skip)) | Err(_) => out.push(msg),
            Ok(Ok(ReceiveVerdict::Rewrite(payload))) => out.push(ChannelMessage { payload, ..msg }),
            // Fail-closed on receive: nobody to tell, so the message is dropped (and the
            // failure logged by the registry).
            Ok(Ok(ReceiveVerdict::Drop)) | Ok(Err(Answer::Closed)) => {}
        }
        Ok(())
    }

    fn member_added(&mut self, _now: Instant, member: &Member) {
        self.member_event(member, true);
    }

    fn member_disappeared(&mut self, _now: Instant, member: &Member) {
        self.member_event(member, false);
    }

    fn heartbeat(&mut self, _now: Instant) -> Vec<ChannelMessage> {
        self.notify(|live| match &live.exports {
            Exports::Interceptor(i) => i.call_heartbeat(&mut live.store),
            _ => Err(world_mismatch()),
        });
        Vec::new()
    }
    fn counters(&self) -> Vec<(&'static str, u64)> {
        let Ok(info) = self.registry.info(&self.plugin) else {
            return Vec::new();
        };
        let f = &info.failures;
        vec![
            ("calls", info.calls),
            (
                "failures",
                f.traps + f.timeouts + f.memory + f.bad_output + f.instantiation + f.busy,
            ),
            ("skipped", f.skipped),
        ]
    }

    fn describe(&self) -> Vec<(String, String)> {
        let Ok(info) = self.registry.info(&self.plugin) else {
            return Vec::new();
        };
        vec![
            ("plugin".into(), info.name),
            ("generation".into(), info.generation.to_string()),
            ("wit_version".into(), info.wit_version.to_string()),
            ("digest".into(), info.digest),
            ("policy".into(), format!("{:?}", info.policy)),
        ]
    }
}
