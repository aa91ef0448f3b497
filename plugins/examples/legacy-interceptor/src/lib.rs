//! A channel interceptor built against the frozen `shoal:plugin@0.1.0` (`wit/v0.1.0`), with
//! wit-bindgen directly: the SDK targets the current version. It stands for every plugin
//! built before 0.2.0 and proves the host still links and runs them beside current ones.
//!
//! Counts what it sees (`sent`, `received`, `bytes`) and refuses to send payloads that start
//! with the configured `veto-prefix` (the sender gets an error naming the prefix).
wit_bindgen::generate!({
    world: "channel-interceptor",
    path: "../../../wit/v0.1.0",
});

use shoal::plugin::host;

struct Legacy;

impl Guest for Legacy {
    fn option_flag() -> u32 {
        0
    }

    fn on_send(msg: Message) -> SendVerdict {
        host::counter_add("sent", 1);
        host::counter_add("bytes", msg.payload.len() as u64);
        match host::config_get("veto-prefix") {
            Some(p) if !p.is_empty() && msg.payload.starts_with(p.as_bytes()) => {
                SendVerdict::Error(format!("payload starts with the vetoed prefix {p:?}"))
            }
            _ => SendVerdict::Pass,
        }
    }

    fn on_receive(msg: Message) -> ReceiveVerdict {
        host::counter_add("received", 1);
        host::counter_add("bytes", msg.payload.len() as u64);
        ReceiveVerdict::Pass
    }

    fn member_added(member: MemberInfo) {
        host::counter_add("members-added", 1);
        host::log(
            shoal::plugin::types::LogLevel::Debug,
            &format!("member added: {}", member.name),
        );
    }

    fn member_disappeared(_member: MemberInfo) {}

    fn heartbeat() {}
}

export!(Legacy);
