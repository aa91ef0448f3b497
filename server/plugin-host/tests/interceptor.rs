//! The checksum interceptor as a layer of the cluster's interceptor stack.
mod common;
use common::*;
use shoal_cluster::{ChannelMessage, Interceptor, MemberId, SendOptions};
use shoal_plugin_host::{FailurePolicy, PluginSpec};
use std::time::Instant;

fn message(payload: &[u8]) -> ChannelMessage {
    ChannelMessage {
        id: 7,
        from: MemberId([1; 16]),
        destinations: vec![MemberId([2; 16])],
        options: SendOptions(SendOptions::USE_ACK),
        payload: payload.to_vec(),
    }
}

#[test]
fn checksum_rewrites_on_send_and_verifies_on_receive() {
    let reg = registry();
    reg.load(
        "crc",
        &component("checksum-interceptor"),
        spec(&[("option-flag", "2")], FailurePolicy::FailClosed),
    )
    .expect("load");
    let mut layer = reg.interceptor("crc").expect("interceptor");
    assert_eq!(layer.name(), "wasm:crc");
    assert_eq!(layer.option_flag(), 2);
    let now = Instant::now();

    let mut sent = Vec::new();
    layer
        .on_send(now, message(b"hello"), &mut sent)
        .expect("send");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].payload.len(), 5 + 5, "CRC-32 and marker appended");
    assert_eq!(&sent[0].payload[..5], b"hello");
    assert_eq!(sent[0].destinations, vec![MemberId([2; 16])]);

    let mut received = Vec::new();
    layer
        .on_receive(now, sent[0].clone(), &mut received)
        .expect("receive");
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].payload, b"hello");

    // A corrupted message is dropped, not delivered.
    let mut corrupted = sent[0].clone();
    corrupted.payload[1] ^= 0x20;
    let mut out = Vec::new();
    layer.on_receive(now, corrupted, &mut out).expect("receive");
    assert!(out.is_empty(), "corrupted message delivered");

    let metric = |n: &str| reg.metrics().iter().find(|m| m.name == n).map(|m| m.value);
    assert_eq!(metric("plugin.crc.sent"), Some(1));
    assert_eq!(metric("plugin.crc.verified"), Some(1));
    assert_eq!(metric("plugin.crc.dropped"), Some(1));
    assert!(
        layer.counters().contains(&("calls", 3)),
        "{:?}",
        layer.counters()
    );
}

#[test]
fn interceptor_notifications_and_unload() {
    let reg = registry();
    reg.load(
        "crc",
        &component("checksum-interceptor"),
        PluginSpec::default(),
    )
    .expect("load");
    let mut layer = reg.interceptor("crc").expect("interceptor");
    let now = Instant::now();
    let member = shoal_cluster::Member {
        id: MemberId([3; 16]),
        name: "node3".into(),
        addr: "127.0.0.1:4003".parse().expect("addr"),
        domain: "d".into(),
        incarnation: 1,
        meta: Default::default(),
    };
    layer.member_added(now, &member);
    layer.member_disappeared(now, &member);
    assert!(layer.heartbeat(now).is_empty());
    assert_eq!(reg.info("crc").expect("info").calls, 3);

    // Once unloaded the layer lets messages through untouched.
    reg.unload("crc").expect("unload");
    let mut out = Vec::new();
    layer.on_send(now, message(b"raw"), &mut out).expect("send");
    assert_eq!(out[0].payload, b"raw");
    assert!(reg.interceptor("crc").is_err());
}

#[test]
fn a_valve_is_not_an_interceptor() {
    let reg = registry();
    reg.load("bench", &component("bench-app"), PluginSpec::default())
        .expect("load");
    assert!(reg.interceptor("bench").is_err());
}

#[test]
fn failing_interceptor_drops_with_an_error_to_the_sender_when_fail_closed() {
    use shoal_plugin_host::Limits;
    let reg = registry();
    // A rewritten payload over the output limit is bad output: the policy answers.
    let tight = Limits {
        max_output_bytes: 8,
        ..Limits::default()
    };
    reg.load(
        "closed",
        &component("checksum-interceptor"),
        spec_limits(&[], FailurePolicy::FailClosed, tight.clone()),
    )
    .expect("load");
    reg.load(
        "open",
        &component("checksum-interceptor"),
        spec_limits(&[], FailurePolicy::FailOpen, tight),
    )
    .expect("load");
    let now = Instant::now();
    let mut out = Vec::new();
    let err = reg
        .interceptor("closed")
        .expect("layer")
        .on_send(now, message(b"hello"), &mut out)
        .expect_err("closed");
    assert_eq!(err.interceptor, "wasm:closed");
    assert!(
        out.is_empty(),
        "a fail-closed interceptor must drop the message"
    );
    reg.interceptor("open")
        .expect("layer")
        .on_send(now, message(b"hello"), &mut out)
        .expect("open passes");
    assert_eq!(out.len(), 1);
    assert_eq!(
        out[0].payload, b"hello",
        "fail-open passes the original message"
    );
    assert_eq!(reg.info("closed").expect("info").failures.bad_output, 1);
}
