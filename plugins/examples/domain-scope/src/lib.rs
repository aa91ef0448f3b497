//! Keeps messages this node sends inside one cluster domain: destinations whose member is in
//! another domain are taken off the message (`narrow`, new in `shoal:plugin@0.2.0`). Like
//! Tomcat's DomainFilterInterceptor, but on the sending side, so nothing crosses.
//!
//! Config: `domain` (default: this node's own domain); `option-flag` (decimal, default 0 =
//! every message). Counters: `narrowed` (messages that lost a destination), `kept`.
use shoal_plugin_sdk::host;
use shoal_plugin_sdk::interceptor::{
    Interceptor, MemberInfo, Message, ReceiveVerdict, SendVerdict,
};

struct DomainScope;

impl Interceptor for DomainScope {
    fn option_flag() -> u32 {
        host::config_get("option-flag")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }

    fn on_send(msg: Message) -> SendVerdict {
        let domain = host::config_get("domain").unwrap_or_else(|| host::local_member().domain);
        let inside: Vec<String> = host::members()
            .into_iter()
            .filter(|m| m.domain == domain)
            .map(|m| m.id)
            .collect();
        match scope(&msg.destinations, &inside) {
            None => {
                host::counter_add("kept", 1);
                SendVerdict::Pass
            }
            Some(kept) => {
                host::counter_add("narrowed", 1);
                SendVerdict::Narrow(kept)
            }
        }
    }

    fn on_receive(_msg: Message) -> ReceiveVerdict {
        ReceiveVerdict::Pass
    }

    fn member_added(_member: MemberInfo) {}

    fn member_disappeared(_member: MemberInfo) {}

    fn heartbeat() {}
}

/// The destinations inside the domain, or `None` when all of them are.
fn scope(destinations: &[String], inside: &[String]) -> Option<Vec<String>> {
    let kept: Vec<String> = destinations
        .iter()
        .filter(|d| inside.contains(d))
        .cloned()
        .collect();
    (kept.len() != destinations.len()).then_some(kept)
}

shoal_plugin_sdk::export_interceptor!(DomainScope);

#[cfg(test)]
mod tests {
    use super::scope;

    #[test]
    fn keeps_only_destinations_inside_the_domain() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(scope(&s(&["a", "b"]), &s(&["a", "b", "c"])), None);
        assert_eq!(scope(&s(&["a", "b"]), &s(&["b"])), Some(s(&["b"])));
        assert_eq!(scope(&s(&["a"]), &s(&[])), Some(s(&[])));
    }
}
