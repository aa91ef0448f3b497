//! {{name}}: a shoal channel interceptor (world `channel-interceptor`). It counts the
//! messages between nodes and their bytes, and passes them unchanged.
use shoal_plugin_sdk::host;
use shoal_plugin_sdk::interceptor::{Interceptor, MemberInfo, Message, ReceiveVerdict, SendVerdict};

struct Plugin;

impl Interceptor for Plugin {
    fn option_flag() -> u32 {
        0 // every message
    }

    fn on_send(msg: Message) -> SendVerdict {
        host::counter_add("sent", 1);
        host::counter_add("sent-bytes", msg.payload.len() as u64);
        SendVerdict::Pass
    }

    fn on_receive(msg: Message) -> ReceiveVerdict {
        host::counter_add("received", 1);
        host::counter_add("received-bytes", msg.payload.len() as u64);
        ReceiveVerdict::Pass
    }

    fn member_added(member: MemberInfo) {
        host::log_info(&format!("member added: {}", member.name));
    }

    fn member_disappeared(member: MemberInfo) {
        host::log_info(&format!("member gone: {}", member.name));
    }

    fn heartbeat() {}
}

shoal_plugin_sdk::export_interceptor!(Plugin);
