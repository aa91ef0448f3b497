//! `[log]` of a node's file: the log's format (text or JSON lines). The logger itself (the
//! formatters) is the binary's (`server/bin/src/logfmt.rs`).
use serde::Deserialize;

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `2026-11-22 14:50:01.123  INFO target: message key=value` (the default).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl<'de> Deserialize<'de> for LogFormat {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(serde::de::Error::custom(format!(
                "log.format = {other:?} is not a log format; use \"text\" or \"json\""
            ))),
        }
    }
}

/// `[log]` of a node's file. `--log-format` wins over it.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
}

impl LogConfig {
    /// The `[log]` section of a node's file, read before the logger exists (the file itself is
    /// loaded and checked later, and a bad file, `[log]` included, is reported then): `None`
    /// if the file cannot be read or parsed.
    pub fn peek(path: &std::path::Path) -> Option<LogConfig> {
        #[derive(Deserialize)]
        struct LogOnly {
            #[serde(default)]
            log: LogConfig,
        }
        let text = std::fs::read_to_string(path).ok()?;
        toml::from_str::<LogOnly>(&text).ok().map(|f| f.log)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_format_parses_and_unknown_values_name_the_key() {
        let ok: LogConfig = toml::from_str("format = \"json\"").expect("json");
        assert_eq!(ok.format, LogFormat::Json);
        let e = toml::from_str::<LogConfig>("format = \"xml\"")
            .expect_err("xml refused")
            .to_string();
        assert!(e.contains("log.format") && e.contains("xml"), "{e}");
    }
}
