//! The log: tracing events on stderr, as text (the default) or as JSON lines.
//!
//! Text lines start with `yyyy-MM-dd HH:mm:ss.SSS` in UTC, the stamp the Tomcat bench harness
//! (`shared/peers/tomcat/tools/logts.py`) parses, so its drop-detection timing works unchanged.
//!
//! JSON (`--log-format json`, or `[log] format = "json"` in a node's file): one object per
//! line with `time` (RFC 3339, UTC), `level`, `target`, `node` (the member name, once known),
//! the fields of the spans the event is in (outermost first) and the event's own fields
//! (`message`, `member`, `context`, `session`, ...), for a log shipper to index.
//! tracing-subscriber's own JSON formatter cannot add the node's name to every line, hence
//! [`JsonLines`].
use serde_json::{Map, Value};
pub use shoal_config::LogFormat;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The node's name on every JSON line; set once, when the node knows it.
static NODE_NAME: OnceLock<String> = OnceLock::new();

/// Names the node in the JSON log from now on (the first call wins).
pub fn set_node_name(name: &str) {
    let _ = NODE_NAME.set(name.to_owned());
}

pub struct UtcMillis;

impl FormatTime for UtcMillis {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        write!(w, "{}", stamp(SystemTime::now()))
    }
}

/// `2026-11-22 14:50:01.123` for `t` (UTC).
pub fn stamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, dd) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{dd:02} {:02}:{:02}:{:02}.{:03}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Days since 1970-01-01 → (year, month, day); Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `2026-11-22T14:50:01.123Z` for `t`.
fn rfc3339(t: SystemTime) -> String {
    let mut s = stamp(t).replacen(' ', "T", 1);
    s.push('Z');
    s
}

/// Installs the subscriber: stderr, no colours, `RUST_LOG` or `info`.
pub fn init(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => fmt.with_timer(UtcMillis).init(),
        LogFormat::Json => fmt.fmt_fields(JsonFields).event_format(JsonLines).init(),
    }
}

/// Collects fields into a JSON object: numbers and booleans as such, the rest as text.
struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl Visit for JsonVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), value.into());
    }
}

/// Stores a span's fields as a JSON object, for [`JsonLines`] to merge into each line.
struct JsonFields;

impl<'w> FormatFields<'w> for JsonFields {
    fn format_fields<R: RecordFields>(&self, mut w: Writer<'w>, fields: R) -> std::fmt::Result {
        let mut map = Map::new();
        fields.record(&mut JsonVisitor(&mut map));
        write!(w, "{}", Value::Object(map))
    }
}

/// One JSON object per event (see the module's documentation).
struct JsonLines;

impl<S> FormatEvent<S, JsonFields> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let meta = event.metadata();
        let mut line = Map::new();
        line.insert("time".into(), rfc3339(SystemTime::now()).into());
        line.insert("level".into(), meta.level().as_str().into());
        line.insert("target".into(), meta.target().into());
        if let Some(node) = NODE_NAME.get() {
            line.insert("node".into(), node.as_str().into());
        }
        // Outermost span first: an inner span's field, then the event's own, wins.
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let ext = span.extensions();
                let Some(fields) = ext.get::<FormattedFields<JsonFields>>() else {
                    continue;
                };
                if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(fields) {
                    line.extend(m);
                }
            }
        }
        event.record(&mut JsonVisitor(&mut line));
        writeln!(w, "{}", Value::Object(line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn stamps_match_known_dates() {
        assert_eq!(stamp(UNIX_EPOCH), "1970-01-01 00:00:00.000");
        // 2026-11-22 14:50:01.123 UTC
        let t = UNIX_EPOCH + Duration::from_millis(1_795_359_001_123);
        assert_eq!(stamp(t), "2026-11-22 14:50:01.123");
        // Leap day.
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(stamp(t), "2000-02-29 00:00:00.000");
        assert_eq!(rfc3339(t), "2000-02-29T00:00:00.000Z");
    }
}
