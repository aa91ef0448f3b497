//! Encrypt: AES-256-GCM with a pre-shared key (Tomcat's EncryptInterceptor), random 96-bit
//! nonces, and a replay window (10 s / 8192 messages per sender): a nonce seen again within
//! the window is refused. The sender's member id and the send options are authenticated as
//! associated data, so a ciphertext cannot be replayed as coming from another member.
//! Tampering fails the GCM tag: the message is refused with an error (the sender's ack says so).
use super::opts::Opts;
use crate::interceptor::{ChannelMessage, Interceptor, InterceptorError};
use crate::member::{Member, MemberId};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

const NONCE: usize = 12;

#[derive(Clone, PartialEq, Eq)]
pub struct EncryptConfig {
    pub option_flag: u32,
    /// 32-byte key (Tomcat: encryptionKey, given as 64 hex digits).
    pub key: [u8; 32],
    pub replay_window: Duration,
    pub replay_window_size: usize,
}

impl std::fmt::Debug for EncryptConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptConfig")
            .field("option_flag", &self.option_flag)
            .field("key", &"(hidden)")
            .field("replay_window", &self.replay_window)
            .field("replay_window_size", &self.replay_window_size)
            .finish()
    }
}

impl EncryptConfig {
    pub const KEYS: &'static [&'static str] = &[
        "option_flag",
        "encryption_key",
        "replay_window",
        "replay_window_size",
    ];
    pub fn new(key: [u8; 32]) -> Self {
        EncryptConfig {
            option_flag: 0,
            key,
            replay_window: Duration::from_secs(10),
            replay_window_size: 8192,
        }
    }
    pub fn from_options(o: &BTreeMap<String, String>) -> Result<Self, String> {
        let mut r = Opts::new("Encrypt", o);
        let hex_key = r.str("encryption_key").ok_or(
            "interceptor Encrypt: option 'encryption_key' is required (64 hex digits, e.g. from `openssl rand -hex 32`)",
        )?;
        let bytes = hex::decode(hex_key.trim())
            .map_err(|e| format!("interceptor Encrypt: option 'encryption_key' is not hex: {e}"))?;
        let key: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            format!("interceptor Encrypt: option 'encryption_key' has {} bytes, AES-256 needs 32 (64 hex digits)", b.len())
        })?;
        let d = Self::new(key);
        let c = EncryptConfig {
            option_flag: r.option_flag(0)?,
            key,
            replay_window: r.millis("replay_window", d.replay_window)?,
            replay_window_size: r.usize("replay_window_size", d.replay_window_size)?,
        };
        r.finish(Self::KEYS)?;
        Ok(c)
    }
}

#[derive(Default)]
struct Seen {
    order: VecDeque<(Instant, [u8; NONCE])>,
    set: HashSet<[u8; NONCE]>,
}

pub struct Encrypt {
    pub config: EncryptConfig,
    cipher: Aes256Gcm,
    rng: StdRng,
    seen: HashMap<MemberId, Seen>,
    pub encrypted: u64,
    pub decrypted: u64,
    pub tampered: u64,
    pub replayed: u64,
}

impl Encrypt {
    /// `seed` feeds the nonce generator: pass OS entropy in production (`build` does), a
    /// fixed seed in simulations.
    pub fn new(config: EncryptConfig, seed: u64) -> Self {
        let cipher = Aes256Gcm::new(&config.key.into());
        Encrypt {
            config,
            cipher,
            rng: StdRng::seed_from_u64(seed),
            seen: HashMap::new(),
            encrypted: 0,
            decrypted: 0,
            tampered: 0,
            replayed: 0,
        }
    }
    fn aad(msg: &ChannelMessage) -> Vec<u8> {
        let mut a = Vec::with_capacity(36);
        a.extend_from_slice(b"shoal-encrypt-v1");
        a.extend_from_slice(&msg.from.0);
        a.extend_from_slice(&msg.options.0.to_be_bytes());
        a
    }
    fn err(reason: impl Into<String>) -> InterceptorError {
        InterceptorError::new("Encrypt", reason)
    }
    /// Records `nonce` from `from`; false if it was seen within the window.
    fn fresh(&mut self, now: Instant, from: MemberId, nonce: [u8; NONCE]) -> bool {
        let (window, size) = (
            self.config.replay_window,
            self.config.replay_window_size.max(1),
        );
        let s = self.seen.entry(from).or_default();
        while let Some(&(t, n)) = s.order.front() {
            if now.saturating_duration_since(t) > window || s.order.len() >= size {
                s.order.pop_front();
                s.set.remove(&n);
            } else {
                break;
            }
        }
        if !s.set.insert(nonce) {
            return false;
        }
        s.order.push_back((now, nonce));
        true
    }
}

impl Interceptor for Encrypt {
    fn name(&self) -> &str {
        "Encrypt"
    }
    fn option_flag(&self) -> u32 {
        self.config.option_flag
    }
    fn on_send(
        &mut self,
        _now: Instant,
        mut msg: ChannelMessage,
        out: &mut Vec<ChannelMessage>,
    ) -> Result<(), InterceptorError> {
        let mut nonce = [0u8; NONCE];
        self.rng.fill_bytes(&mut nonce);
        let aad = Self::aad(&msg);
        let ct = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &msg.payload,
                    aad: &aad,
                },
            )
            .map_err(|_| Self::err("encryption failed"))?;
        let mut payload = Vec::with_capacity(NONCE + ct.len());
        payload.extend_from_slice(&nonce);
        payload.extend_from_slice(&ct);
        msg.payload = payload;
        self.encrypted += 1;
        out.push(msg);
        Ok(())
    }
    fn on_receive(
        &mut self,
        now: Instant,
        mut msg: ChannelMessage,
        out: &mut Vec<ChannelMessage>,
    ) -> Result<(), InterceptorError> {
        if msg.payload.len() < NONCE + 16 {
            self.tampered += 1;
            return Err(Self::err(
                "message too short to be encrypted: is Encrypt configured on the sender?",
            ));
        }
        let mut nonce = [0u8; NONCE];
        nonce.copy_from_slice(&msg.payload[..NONCE]);
        let aad = Self::aad(&msg);
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &msg.payload[NONCE..],
                    aad: &aad,
                },
            )
            .map_err(|_| {
                self.tampered += 1;
                Self::err("decryption failed: tampered message or a different encryption_key")
            })?;
        // Only authentic messages enter the replay window, so forgeries cannot evict it.
        if !self.fresh(now, msg.from, nonce) {
            self.replayed += 1;
            return Err(Self::err(
                "replayed message (nonce seen within the replay window)",
            ));
        }
        msg.payload = plain;
        self.decrypted += 1;
        out.push(msg);
        Ok(())
    }
    fn member_disappeared(&mut self, _now: Instant, member: &Member) {
        self.seen.remove(&member.id);
    }
    fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("encrypted", self.encrypted),
            ("decrypted", self.decrypted),
            ("tampered", self.tampered),
            ("replayed", self.replayed),
        ]
    }
    fn describe(&self) -> Vec<(String, String)> {
        vec![
            ("algorithm".into(), "AES-256-GCM".into()),
            (
                "replay_window".into(),
                format!("{}ms", self.config.replay_window.as_millis()),
            ),
            (
                "replay_window_size".into(),
                self.config.replay_window_size.to_string(),
            ),
        ]
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}
