//! The node's TOML file: one struct per section, unknown keys refused. Sections of later
//! issues (`[http]`, `[admin]`, `[session]`, ...) are added here as fields.
use anyhow::{anyhow, Context, Result};
use serde::Deserialize;
use shoal_net::ClusterConfig;
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub cluster: ClusterConfig,
    /// `[http]`: contexts and their session managers. Absent (and no `--http-port`): the
    /// node is a channel member only (e.g. a balancer or a test peer).
    #[serde(default)]
    pub http: Option<shoal_http::HttpConfig>,
    /// `[admin]`: the REST admin API and UI on their own listener. Absent (and no
    /// `--admin-port`): no admin listener.
    #[serde(default)]
    pub admin: Option<shoal_admin::AdminConfig>,
    /// `[[plugin]]`: Wasm components loaded at start.
    #[serde(default)]
    pub plugin: Vec<crate::plugin::PluginEntry>,
    /// `[farm]`: the farm deployer's directory, signature policy and limits.
    #[serde(default)]
    pub farm: shoal_farm::FarmSettings,
    /// `[log]`: the log's format. Read before the rest (`LogConfig::peek`, the logger
    /// comes first); here so that the key is accepted and a bad value names the file.
    #[serde(default)]
    pub log: crate::log::LogConfig,
}

/// Per-node values a script or test can override without editing the file.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct Overrides {
    /// Member name / route (cluster.name).
    #[arg(long)]
    pub name: Option<String>,
    /// Receiver port (cluster.receiver.port); 0 = any free port.
    #[arg(long)]
    pub port: Option<u16>,
    /// Receiver address (cluster.receiver.address).
    #[arg(long)]
    pub bind: Option<String>,
    /// Static member `host:port`; repeatable; replaces cluster.membership.members.
    #[arg(long = "member")]
    pub members: Vec<String>,
    /// Cluster secret (prefer the SHOAL_CLUSTER_SECRET environment variable: flags are visible in `ps`).
    #[arg(long)]
    pub secret: Option<String>,
    /// HTTP port (http.port); enables `[http]` with its defaults when the file has none.
    #[arg(long)]
    pub http_port: Option<u16>,
    /// Admin API port on 127.0.0.1 (admin.bind); enables `[admin]` when the file has none.
    #[arg(long)]
    pub admin_port: Option<u16>,
}

impl Config {
    /// Reads and validates `path`; every error names the file and the key.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Config> {
        let cfg: Config =
            toml::from_str(text).map_err(|e| anyhow!("config file {}: {e}", path.display()))?;
        Ok(cfg)
    }

    /// Applies the flags, then validates the result (so a bad flag is reported like a bad key).
    pub fn apply(&mut self, o: &Overrides, origin: &Option<PathBuf>) -> Result<()> {
        let c = &mut self.cluster;
        if let Some(n) = &o.name {
            c.name = n.clone();
        }
        if let Some(p) = o.port {
            c.receiver.port = p;
        }
        if let Some(b) = &o.bind {
            c.receiver.address = b.clone();
        }
        if !o.members.is_empty() {
            c.membership.members = o.members.clone();
        }
        if let Some(s) = &o.secret {
            c.secret = Some(s.clone());
        }
        if let Some(p) = o.http_port {
            self.http.get_or_insert_with(Default::default).port = p;
        }
        if let Some(p) = o.admin_port {
            let a = self.admin.get_or_insert_with(Default::default);
            a.bind.set_port(p);
        }
        let c = &mut self.cluster;
        let file = origin
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "(no config file)".into());
        c.validate().map_err(|e| anyhow!("config {file}: {e}"))?;
        if let Some(h) = &self.http {
            h.validate().map_err(|e| anyhow!("config {file}: {e}"))?;
        }
        if let Some(a) = self.admin.take() {
            self.admin = Some(a.resolve().map_err(|e| anyhow!("config {file}: {e}"))?);
        }
        self.farm
            .core_config(0)
            .map_err(|e| anyhow!("config {file}: {e}"))?;
        if let Some(w) = &self.farm.watch_dir {
            if w.starts_with(&self.farm.dir) || self.farm.dir.starts_with(w) {
                return Err(anyhow!(
                    "config {file}: [farm] watch_dir {} overlaps [farm] dir {}; give the watch directory its own place",
                    w.display(),
                    self.farm.dir.display()
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(t: &str) -> Result<Config> {
        Config::parse(t, Path::new("node.toml"))
    }

    #[test]
    fn farm_section_parses_and_is_checked() {
        let c = parse(
            "[farm]\ndir = \"/var/lib/shoal/farm\"\nmin_members = 2\nmax_upload_bytes = 1048576\n",
        )
        .expect("valid [farm]");
        assert_eq!(c.farm.min_members, 2);
        assert_eq!(c.farm.max_upload_bytes, 1 << 20);
        let e = parse("[farm]\nwatch = true\n").expect_err("unknown key");
        assert!(e.to_string().contains("watch"), "{e}");
        let mut c = parse("[farm]\nrequire_signatures = true\n").expect("parses");
        let e = c
            .apply(&Overrides::default(), &None)
            .expect_err("no trusted key");
        assert!(e.to_string().contains("trusted_keys"), "{e}");
        let mut c = parse("[farm]\nwatch_dir = \"/srv/shoal/drop\"\n").expect("watch_dir");
        assert_eq!(
            c.farm.watch_dir.as_deref(),
            Some(Path::new("/srv/shoal/drop"))
        );
        assert!(c.apply(&Overrides::default(), &None).is_ok());
        let mut c =
            parse("[farm]\ndir = \"/srv/farm\"\nwatch_dir = \"/srv/farm/drop\"\n").expect("parses");
        let e = c.apply(&Overrides::default(), &None).expect_err("overlap");
        assert!(e.to_string().contains("watch_dir"), "{e}");
    }

    #[test]
    fn full_file_parses_and_unknown_keys_are_named() {
        let c = parse(
            r#"
            [cluster]
            name = "node2"
            secret_env = "MY_SECRET"
            [cluster.receiver]
            port = 4100
            [cluster.membership]
            provider = "multicast"
            members = ["10.0.0.1:4000"]
            [cluster.membership.multicast]
            frequency_ms = 250
            [[cluster.interceptor]]
            name = "Fragmentation"
            max_size = 102400
            [[cluster.interceptor]]
            name = "Order"
            "#,
        )
        .expect("valid file");
        assert_eq!(c.cluster.name, "node2");
        assert_eq!(c.cluster.receiver.port, 4100);
        assert_eq!(c.cluster.membership.multicast.frequency_ms, 250);
        assert_eq!(
            c.cluster.interceptor[0]
                .options
                .get("max_size")
                .map(String::as_str),
            Some("102400")
        );
        assert!(c.cluster.interceptor[1].options.is_empty());

        let e = parse("[cluster.receiver]\nprot = 4000\n")
            .expect_err("typo refused")
            .to_string();
        assert!(e.contains("node.toml") && e.contains("prot"), "{e}");
        let e = parse("[clutser]\n")
            .expect_err("unknown section refused")
            .to_string();
        assert!(e.contains("clutser"), "{e}");
        let e = parse("[cluster.membership]\nprovider = \"carrier-pigeon\"\n")
            .expect_err("bad enum")
            .to_string();
        assert!(
            e.contains("carrier-pigeon") || e.contains("provider"),
            "{e}"
        );
    }

    #[test]
    fn readme_reference_block_parses_to_the_defaults() {
        let readme = include_str!("../../../README.md");
        let start = readme
            .find("## Configuration")
            .expect("README has a Configuration section");
        let block = &readme[start..];
        let body = &block[block.find("```toml\n").expect("toml block") + 8..];
        let body = &body[..body.find("```").expect("block end")];
        let c = parse(body).expect("README's reference parses");
        c.cluster.validate().expect("README's reference is valid");
        let d = ClusterConfig::default();
        assert_eq!(c.cluster.receiver.port, d.receiver.port);
        assert_eq!(
            c.cluster.failure_detector.suspect_after_ms,
            d.failure_detector.suspect_after_ms
        );
        assert_eq!(c.cluster.sender.queue_bytes, d.sender.queue_bytes);
        assert_eq!(
            c.cluster.membership.multicast.port,
            d.membership.multicast.port
        );
    }

    #[test]
    fn overrides_apply_and_are_validated() {
        let mut c = Config::default();
        let o = Overrides {
            name: Some("n9".into()),
            port: Some(0),
            members: vec!["127.0.0.1:5".into()],
            ..Default::default()
        };
        c.apply(&o, &None).expect("valid");
        assert_eq!(c.cluster.name, "n9");
        let bad = Overrides {
            name: Some("bad name".into()),
            ..Default::default()
        };
        let e = c
            .apply(&bad, &Some(PathBuf::from("x.toml")))
            .expect_err("bad name")
            .to_string();
        assert!(e.contains("x.toml") && e.contains("cluster.name"), "{e}");
    }
}
