//! A Wasm channel interceptor as one more layer of the cluster's interceptor stack.
use crate::bindings::{channel, types, v0_1};
use crate::calls::world_mismatch;
use crate::error::PluginError;
use crate::plugin::Answer;
use crate::registry::PluginRegistry;
use crate::types::PluginWorld;
use crate::version::{Exports, Live};
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

/// What an interceptor answered on send, whichever WIT version it was built against
/// (0.1.0 has no `narrow`).
enum SendVerdict {
    Pass,
    Rewrite(Vec<u8>),
    Drop,
    Error(String),
    Narrow(Vec<String>),
}

impl From<channel::SendVerdict> for SendVerdict {
    fn from(v: channel::SendVerdict) -> Self {
        match v {
            channel::SendVerdict::Pass => SendVerdict::Pass,
            channel::SendVerdict::Rewrite(p) => SendVerdict::Rewrite(p),
            channel::SendVerdict::Drop => SendVerdict::Drop,
            channel::SendVerdict::Error(e) => SendVerdict::Error(e),
            channel::SendVerdict::Narrow(ids) => SendVerdict::Narrow(ids),
        }
    }
}

impl From<v0_1::channel::SendVerdict> for SendVerdict {
    fn from(v: v0_1::channel::SendVerdict) -> Self {
        match v {
            v0_1::channel::SendVerdict::Pass => SendVerdict::Pass,
            v0_1::channel::SendVerdict::Rewrite(p) => SendVerdict::Rewrite(p),
            v0_1::channel::SendVerdict::Drop => SendVerdict::Drop,
            v0_1::channel::SendVerdict::Error(e) => SendVerdict::Error(e),
        }
    }
}

/// What an interceptor answered on receive (the same in every version).
enum ReceiveVerdict {
    Pass,
    Rewrite(Vec<u8>),
    Drop,
}

impl From<channel::ReceiveVerdict> for ReceiveVerdict {
    fn from(v: channel::ReceiveVerdict) -> Self {
        match v {
            channel::ReceiveVerdict::Pass => ReceiveVerdict::Pass,
            channel::ReceiveVerdict::Rewrite(p) => ReceiveVerdict::Rewrite(p),
            channel::ReceiveVerdict::Drop => ReceiveVerdict::Drop,
        }
    }
}

impl From<v0_1::channel::ReceiveVerdict> for ReceiveVerdict {
    fn from(v: v0_1::channel::ReceiveVerdict) -> Self {
        match v {
            v0_1::channel::ReceiveVerdict::Pass => ReceiveVerdict::Pass,
            v0_1::channel::ReceiveVerdict::Rewrite(p) => ReceiveVerdict::Rewrite(p),
            v0_1::channel::ReceiveVerdict::Drop => ReceiveVerdict::Drop,
        }
    }
}

/// The message's fields as both versions' records take them; the payload is moved in and
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

/// Calls `on-send` (`send` true) or `on-receive` on whichever version `live` is, lending
/// it `payload` for the call.
fn call_message(
    live: &mut Live,
    f: Fields,
    payload: &mut Vec<u8>,
    send: bool,
) -> wasmtime::Result<Verdict> {
    let store = &mut live.store;
    match &live.exports {
        Exports::Interceptor(i) => {
            let m = channel::Message {
                id: f.id,
                from: f.from,
                destinations: f.destinations,
                options: f.options,
                payload: std::mem::take(payload),
            };
            let r = if send {
                i.call_on_send(&mut *store, &m)
                    .map(|v| Verdict::Send(v.into()))
            } else {
                i.call_on_receive(&mut *store, &m)
                    .map(|v| Verdict::Receive(v.into()))
            };
            *payload = m.payload;
            r
        }
        Exports::InterceptorV0_1(i) => {
            let m = v0_1::channel::Message {
                id: f.id,
                from: f.from,
                destinations: f.destinations,
                options: f.options,
                payload: std::mem::take(payload),
            };
            let r = if send {
                i.call_on_send(&mut *store, &m)
                    .map(|v| Verdict::Send(v.into()))
            } else {
                i.call_on_receive(&mut *store, &m)
                    .map(|v| Verdict::Receive(v.into()))
            };
            *payload = m.payload;
            r
        }
        _ => Err(world_mismatch()),
    }
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
            Exports::InterceptorV0_1(i) => {
                let info = v0_1::types::MemberInfo {
                    id: info.id.clone(),
                    name: info.name.clone(),
                    address: info.address.clone(),
                    domain: info.domain.clone(),
                };
                if added {
                    i.call_member_added(&mut live.store, &info)
                } else {
                    i.call_member_disappeared(&mut live.store, &info)
                }
            }
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
            .and_then(|p| p.version())
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
                crate::calls::truncate(&mut reason, 1024);
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
            Exports::InterceptorV0_1(i) => i.call_heartbeat(&mut live.store),
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
            ("version".into(), info.version.to_string()),
            ("digest".into(), info.digest),
            ("policy".into(), format!("{:?}", info.policy)),
        ]
    }
}
