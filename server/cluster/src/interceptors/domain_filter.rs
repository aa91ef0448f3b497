//! DomainFilter: drops messages from members of other domains (Tomcat's
//! DomainFilterInterceptor). The handshake already refuses other domains; this layer keeps
//! Tomcat's behaviour for stacks that relax it and counts what it drops.
use super::opts::Opts;
use crate::interceptor::{ChannelMessage, Interceptor, InterceptorError};
use crate::member::{Member, MemberId};
use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct DomainFilterConfig {
    pub option_flag: u32,
    /// The accepted domain (Tomcat: domain).
    pub domain: String,
}

impl DomainFilterConfig {
    pub const KEYS: &'static [&'static str] = &["option_flag", "domain"];
    pub fn from_options(o: &BTreeMap<String, String>) -> Result<Self, String> {
        let mut r = Opts::new("DomainFilter", o);
        let c = DomainFilterConfig {
            option_flag: r.option_flag(0)?,
            domain: r
                .str("domain")
                .ok_or("interceptor DomainFilter: option 'domain' is required")?,
        };
        r.finish(Self::KEYS)?;
        Ok(c)
    }
}

pub struct DomainFilter {
    pub config: DomainFilterConfig,
    domains: HashMap<MemberId, String>,
    pub dropped: u64,
}

impl DomainFilter {
    pub fn new(config: DomainFilterConfig) -> Self {
        DomainFilter {
            config,
            domains: HashMap::new(),
            dropped: 0,
        }
    }
}

impl Interceptor for DomainFilter {
    fn name(&self) -> &str {
        "DomainFilter"
    }
    fn option_flag(&self) -> u32 {
        self.config.option_flag
    }
    fn on_receive(
        &mut self,
        _now: Instant,
        msg: ChannelMessage,
        out: &mut Vec<ChannelMessage>,
    ) -> Result<(), InterceptorError> {
        match self.domains.get(&msg.from) {
            Some(d) if *d == self.config.domain => out.push(msg),
            _ => self.dropped += 1,
        }
        Ok(())
    }
    fn member_added(&mut self, _now: Instant, member: &Member) {
        self.domains.insert(member.id, member.domain.clone());
    }
    fn member_disappeared(&mut self, _now: Instant, member: &Member) {
        self.domains.remove(&member.id);
    }
    fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![("dropped", self.dropped)]
    }
    fn describe(&self) -> Vec<(String, String)> {
        vec![("domain".into(), self.config.domain.clone())]
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}
