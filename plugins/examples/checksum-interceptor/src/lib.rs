//! Appends a CRC-32 of the payload to every message it sends and verifies (and strips) it
//! on receipt; a message whose checksum does not match is dropped and counted.
//!
//! Config: `option-flag` (decimal; default 0 = every message). Every node of the cluster
//! must run it on the same messages, or receivers see trailing bytes / drop everything.
use shoal_plugin_sdk::host;
use shoal_plugin_sdk::interceptor::{
    Interceptor, MemberInfo, Message, ReceiveVerdict, SendVerdict,
};

/// Appended after the checksum so that a message sent without the interceptor is told
/// apart from a corrupted one in the logs.
const MAGIC: u8 = 0xC5;

struct Checksum;

impl Interceptor for Checksum {
    fn option_flag() -> u32 {
        host::config_get("option-flag")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }

    fn on_send(msg: Message) -> SendVerdict {
        host::counter_add("sent", 1);
        SendVerdict::Rewrite(seal(msg.payload))
    }

    fn on_receive(msg: Message) -> ReceiveVerdict {
        match open(msg.payload) {
            Ok(payload) => {
                host::counter_add("verified", 1);
                ReceiveVerdict::Rewrite(payload)
            }
            Err(why) => {
                host::counter_add("dropped", 1);
                host::log_warn(&format!(
                    "dropping message {} from {}: {why}",
                    msg.id, msg.from
                ));
                ReceiveVerdict::Drop
            }
        }
    }

    fn member_added(member: MemberInfo) {
        host::log_debug(&format!("member added: {}", member.name));
    }

    fn member_disappeared(member: MemberInfo) {
        host::log_debug(&format!("member disappeared: {}", member.name));
    }

    fn heartbeat() {}
}

fn seal(mut payload: Vec<u8>) -> Vec<u8> {
    let crc = crc32(&payload);
    payload.extend_from_slice(&crc.to_le_bytes());
    payload.push(MAGIC);
    payload
}

fn open(mut sealed: Vec<u8>) -> Result<Vec<u8>, &'static str> {
    if sealed.len() < 5 || sealed[sealed.len() - 1] != MAGIC {
        return Err("no checksum trailer (is the sender running the interceptor?)");
    }
    let body_len = sealed.len() - 5;
    let mut crc = [0u8; 4];
    crc.copy_from_slice(&sealed[body_len..body_len + 4]);
    sealed.truncate(body_len);
    if crc32(&sealed) != u32::from_le_bytes(crc) {
        return Err("checksum mismatch");
    }
    Ok(sealed)
}

/// Byte-at-a-time table, built at compile time: a 1 KiB payload costs about a microsecond.
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

fn crc32(data: &[u8]) -> u32 {
    !data.iter().fold(0xFFFF_FFFFu32, |crc, &b| {
        CRC_TABLE[((crc ^ b as u32) & 0xFF) as usize] ^ (crc >> 8)
    })
}

shoal_plugin_sdk::export_interceptor!(Checksum);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_then_open_round_trips_and_detects_corruption() {
        let sealed = seal(b"hello".to_vec());
        assert_eq!(open(sealed.clone()), Ok(b"hello".to_vec()));
        let mut bad = sealed;
        bad[0] ^= 1;
        assert_eq!(open(bad), Err("checksum mismatch"));
        assert!(open(b"hi".to_vec()).is_err());
        assert_eq!(crc32(b"abc"), 891_568_578);
    }
}
