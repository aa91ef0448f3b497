//! Appends a CRC-32 of the payload to every message it sends and verifies (and strips) it
//! on receipt; a message whose checksum does not match is dropped and counted.
//!
//! Config: `option-flag` (decimal; default 0 = every message). Every node of the cluster
//! must run it on the same messages, or receivers see trailing bytes / drop everything.
//! To add or remove it on a running cluster (nodes change one after the other), roll it in
//! two steps: load with `seal = "false"` and `accept-unsealed = "true"` everywhere, then
//! configure `seal = "true"`; to remove, configure `seal = "false"`, then unload.
//! - `seal` (default `true`): append the checksum on send; `false` passes sends untouched.
//! - `accept-unsealed` (default `false`): deliver a message without a valid checksum
//!   unchanged (counted `unsealed`) instead of dropping it. A payload may end in bytes that
//!   look like a trailer, so in this mode a corrupted sealed message cannot be told from an
//!   unsealed one and is delivered as is: use it only while rolling the interceptor in or out.
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
        if !settings().seal {
            host::counter_add("passed", 1);
            return SendVerdict::Pass;
        }
        host::counter_add("sent", 1);
        SendVerdict::Rewrite(seal(msg.payload))
    }

    fn on_receive(msg: Message) -> ReceiveVerdict {
        match body_len(&msg.payload) {
            Ok(len) => {
                host::counter_add("verified", 1);
                let mut payload = msg.payload;
                payload.truncate(len);
                ReceiveVerdict::Rewrite(payload)
            }
            // Any payload may end in a byte that looks like the marker: during a rollout
            // only a valid checksum counts as sealed, everything else is delivered as is.
            Err(_) if settings().accept_unsealed => {
                host::counter_add("unsealed", 1);
                ReceiveVerdict::Pass
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

/// The configuration, read once per instance (it is fixed for a plugin version).
struct Settings {
    seal: bool,
    accept_unsealed: bool,
}

fn settings() -> &'static Settings {
    static SETTINGS: std::sync::OnceLock<Settings> = std::sync::OnceLock::new();
    SETTINGS.get_or_init(|| {
        let flag = |key: &str, default: bool| {
            host::config_get(key).map_or(default, |v| v.trim().eq_ignore_ascii_case("true"))
        };
        Settings {
            seal: flag("seal", true),
            accept_unsealed: flag("accept-unsealed", false),
        }
    })
}

fn seal(mut payload: Vec<u8>) -> Vec<u8> {
    let crc = crc32(&payload);
    payload.reserve_exact(5);
    payload.extend_from_slice(&crc.to_le_bytes());
    payload.push(MAGIC);
    payload
}

/// The length of the payload inside a sealed message whose checksum matches.
fn body_len(sealed: &[u8]) -> Result<usize, &'static str> {
    if sealed.len() < 5 || sealed[sealed.len() - 1] != MAGIC {
        return Err("no checksum trailer (is the sender running the interceptor?)");
    }
    let body_len = sealed.len() - 5;
    let mut crc = [0u8; 4];
    crc.copy_from_slice(&sealed[body_len..body_len + 4]);
    if crc32(&sealed[..body_len]) != u32::from_le_bytes(crc) {
        return Err("checksum mismatch");
    }
    Ok(body_len)
}

/// Slicing-by-8 tables, built at compile time: eight bytes per step keeps a 1 KiB payload
/// well under a microsecond (the byte-at-a-time loop costs several in wasm).
const CRC_TABLES: [[u32; 256]; 8] = {
    let mut t = [[0u32; 256]; 8];
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
        t[0][i] = crc;
        i += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[k - 1][i];
            t[k][i] = (prev >> 8) ^ t[0][(prev & 0xFF) as usize];
            i += 1;
        }
        k += 1;
    }
    t
};

fn crc32(data: &[u8]) -> u32 {
    let t = &CRC_TABLES;
    let mut crc = 0xFFFF_FFFFu32;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let lo = crc ^ u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        crc = t[7][(lo & 0xFF) as usize]
            ^ t[6][((lo >> 8) & 0xFF) as usize]
            ^ t[5][((lo >> 16) & 0xFF) as usize]
            ^ t[4][(lo >> 24) as usize]
            ^ t[3][c[4] as usize]
            ^ t[2][c[5] as usize]
            ^ t[1][c[6] as usize]
            ^ t[0][c[7] as usize];
    }
    for &b in chunks.remainder() {
        crc = t[0][((crc ^ b as u32) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}

shoal_plugin_sdk::export_interceptor!(Checksum);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_then_open_round_trips_and_detects_corruption() {
        let sealed = seal(b"hello".to_vec());
        assert_eq!(body_len(&sealed), Ok(5));
        let mut bad = sealed;
        bad[0] ^= 1;
        assert_eq!(body_len(&bad), Err("checksum mismatch"));
        assert!(body_len(b"hi").is_err());
        // An unsealed payload that happens to end with the marker is not taken as sealed.
        assert!(body_len(&[1, 2, 3, 4, 5, 6, MAGIC]).is_err());
        assert_eq!(crc32(b"abc"), 891_568_578);
        // Long enough for the 8-byte path: "123456789" is the standard check value.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }
}
