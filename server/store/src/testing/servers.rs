//! Real PostgreSQL, MariaDB and Redis servers for tests, from the Debian packages that
//! `scripts/prereqs.sh` installs: each on loopback on a free port, with its data in a
//! temporary directory, its output in `server.log` there, and stopped (its whole process
//! group) when the [`Server`] is dropped. Readiness is polled against a deadline; a server
//! that does not start is an `Err` with the reason and the end of its log, for the test to
//! fail with (never a skip).
use crate::{RedisConfig, Secret, SqlConfig, StoreConfig};
use std::fs::File;
use std::future::Future;
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// The password every test server is given.
pub const PASSWORD: &str = "shoal-test-pw";
/// How long a server may take to start (initdb and mariadb-install-db on a busy machine).
const START_DEADLINE: Duration = Duration::from_secs(90);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Postgres,
    MariaDb,
    Redis,
}

/// A running server; dropping it stops it and removes its data.
#[derive(Debug)]
pub struct Server {
    pub kind: Kind,
    pub port: u16,
    child: Child,
    /// Signal for a quick, clean stop (PostgreSQL: QUIT, immediate shutdown).
    stop_signal: &'static str,
    /// How it was started (program and arguments), for [`Server::restart`].
    program: std::ffi::OsString,
    args: Vec<std::ffi::OsString>,
    // Last: removed after the process is gone.
    dir: TempDir,
}

impl Server {
    /// The store settings for this server (database or key prefix of its own per call).
    pub fn config(&self) -> StoreConfig {
        match self.kind {
            Kind::Postgres => StoreConfig::Postgres(self.sql("postgres", "postgres")),
            Kind::MariaDb => StoreConfig::Mysql(self.sql("mysql", "shoal")),
            Kind::Redis => StoreConfig::Redis(RedisConfig {
                url: format!("redis://:{PASSWORD}@127.0.0.1:{}/0", self.port),
                connect_timeout_ms: 2_000,
                ..RedisConfig::default()
            }),
        }
    }

    fn sql(&self, scheme: &str, db: &str) -> SqlConfig {
        SqlConfig {
            connection_url: Some(format!("{scheme}://shoal@127.0.0.1:{}/{db}", self.port)),
            connection_password: Some(Secret(PASSWORD.into())),
            connect_timeout_ms: 5_000,
            ..SqlConfig::default()
        }
    }

    /// The server's data directory (for tests that look at files).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A port nothing listens on (for unreachable-server tests).
    pub fn closed_port() -> u16 {
        free_port()
    }

    /// `kill -9` of the server's whole process group (an outage): its port refuses
    /// connections until [`Server::restart`]. Its data directory stays.
    pub fn kill9(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }

    /// Starts the server again as it was first started (same port, same data directory),
    /// after [`Server::kill9`]; waits until it answers. PostgreSQL recovers from its WAL.
    pub async fn restart(&mut self) -> Result<(), String> {
        let what = format!("{:?} restart", self.kind);
        if let Ok(None) = self.child.try_wait() {
            return Err(format!(
                "{what}: the server is still running (kill9 it first)"
            ));
        }
        let log = self.dir.path().join("server.log");
        if self.kind == Kind::Postgres {
            // The killed postmaster may linger as a zombie (a container's init need not
            // reap it), and its lock files would make the new one refuse to start. Its whole
            // process group is gone, so they are stale.
            let dir = self.dir.path();
            let socket = format!(".s.PGSQL.{}", self.port);
            for stale in [
                dir.join("data").join("postmaster.pid"),
                dir.join(format!("{socket}.lock")),
                dir.join(socket),
            ] {
                let _ = std::fs::remove_file(stale);
            }
        }
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args);
        let (child, _) = spawn(&what, &mut cmd, &log)?;
        self.child = child;
        let (kind, port) = (self.kind, self.port);
        wait_ready(self, &what, &log, || ping(kind, port)).await
    }
}

/// One connection and one query to a test server on `port` (as user `shoal`).
async fn ping(kind: Kind, port: u16) -> Result<(), String> {
    use sqlx::Connection;
    match kind {
        Kind::Postgres => {
            let url = format!("postgres://shoal:{PASSWORD}@127.0.0.1:{port}/postgres");
            let c = sqlx::PgConnection::connect(&url)
                .await
                .map_err(|e| e.to_string())?;
            c.close().await.map_err(|e| e.to_string())
        }
        Kind::MariaDb => {
            let url = format!("mysql://shoal:{PASSWORD}@127.0.0.1:{port}/shoal");
            let c = sqlx::MySqlConnection::connect(&url)
                .await
                .map_err(|e| e.to_string())?;
            c.close().await.map_err(|e| e.to_string())
        }
        Kind::Redis => {
            let url = format!("redis://:{PASSWORD}@127.0.0.1:{port}/0");
            let client = redis::Client::open(url.as_str()).map_err(|e| e.to_string())?;
            let mut c = client
                .get_multiplexed_async_connection()
                .await
                .map_err(|e| e.to_string())?;
            redis::cmd("PING")
                .query_async::<String>(&mut c)
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args([self.stop_signal, "--", &group])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Whatever is left of the group (a stuck child, a forked helper).
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let start = text.len().saturating_sub(2_000);
    let start = (start..text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0);
    text[start..].to_string()
}

/// Run a set-up command to completion; its output goes to `log`.
fn run(what: &str, cmd: &mut Command, log: &Path) -> Result<(), String> {
    let out = File::options()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("{what}: log: {e}"))?;
    let err = out.try_clone().map_err(|e| format!("{what}: log: {e}"))?;
    let status = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .status()
        .map_err(|e| format!("{what}: cannot run {cmd:?}: {e} (is the package installed? see scripts/prereqs.sh)"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({status}): {}", tail(log)))
    }
}

/// How `cmd` is run: its program and arguments (kept to restart a server the same way).
type Argv = (std::ffi::OsString, Vec<std::ffi::OsString>);

fn argv(cmd: &Command) -> Argv {
    (
        cmd.get_program().to_owned(),
        cmd.get_args().map(|a| a.to_owned()).collect(),
    )
}

/// Start the server in its own process group, output to `log`.
fn spawn(what: &str, cmd: &mut Command, log: &Path) -> Result<(Child, Argv), String> {
    let out = File::options()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("{what}: log: {e}"))?;
    let err = out.try_clone().map_err(|e| format!("{what}: log: {e}"))?;
    cmd.stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map(|child| (child, argv(cmd)))
        .map_err(|e| format!("{what}: cannot start {cmd:?}: {e} (is the package installed? see scripts/prereqs.sh)"))
}

/// Poll `ready` until it answers or the deadline passes; fail early if the server exits.
async fn wait_ready<F, Fut>(
    server: &mut Server,
    what: &str,
    log: &Path,
    ready: F,
) -> Result<(), String>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let deadline = Instant::now() + START_DEADLINE;
    let mut last = String::from("not tried");
    while Instant::now() < deadline {
        if let Ok(Some(status)) = server.child.try_wait() {
            return Err(format!(
                "{what} exited ({status}) before it was ready: {}",
                tail(log)
            ));
        }
        match ready().await {
            Ok(()) => return Ok(()),
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!(
        "{what} not ready within {START_DEADLINE:?} (last: {last}): {}",
        tail(log)
    ))
}

fn postgres_bin() -> Result<PathBuf, String> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| format!("postgres: /usr/lib/postgresql: {e} (install the Debian package postgresql; see scripts/prereqs.sh)"))?
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| "postgres: no version under /usr/lib/postgresql".into())
}

/// PostgreSQL: `initdb` (user `shoal`, password auth) and `postgres` on a free port. As
/// root, both run as the `postgres` user (PostgreSQL refuses root), through `runuser`.
pub async fn postgres() -> Result<Server, String> {
    let bin = postgres_bin()?;
    let dir = tempfile::Builder::new()
        .prefix("shoal-pg-")
        .tempdir()
        .map_err(|e| format!("postgres: tempdir: {e}"))?;
    let log = dir.path().join("server.log");
    let data = dir.path().join("data");
    let pwfile = dir.path().join("pw");
    std::fs::write(&pwfile, PASSWORD).map_err(|e| format!("postgres: {e}"))?;
    let root = is_root();
    if root {
        run(
            "chown for postgres",
            Command::new("chown")
                .arg("-R")
                .arg("postgres:")
                .arg(dir.path()),
            &log,
        )?;
    }
    let as_pg = |program: PathBuf| {
        if root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    };
    run(
        "initdb",
        as_pg(bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "shoal",
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .arg(format!("--pwfile={}", pwfile.display())),
        &log,
    )?;
    let port = free_port();
    let (child, (program, args)) = spawn(
        "postgres",
        as_pg(bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-F"])
            .arg("-k")
            .arg(dir.path())
            .args(["-c", "shared_buffers=16MB", "-c", "max_connections=50"]),
        &log,
    )?;
    let mut server = Server {
        kind: Kind::Postgres,
        port,
        child,
        program,
        args,
        stop_signal: "-QUIT",
        dir,
    };
    let url = format!("postgres://shoal:{PASSWORD}@127.0.0.1:{port}/postgres");
    wait_ready(&mut server, "postgres", &log, || async {
        use sqlx::Connection;
        let c = sqlx::PgConnection::connect(&url)
            .await
            .map_err(|e| e.to_string())?;
        c.close().await.map_err(|e| e.to_string())
    })
    .await?;
    Ok(server)
}

/// MariaDB: `mariadb-install-db` and `mariadbd` on a free port (socket in the temp dir),
/// then a database `shoal` and a user `shoal` with a password, made over the socket as root.
pub async fn mariadb() -> Result<Server, String> {
    let dir = tempfile::Builder::new()
        .prefix("shoal-mariadb-")
        .tempdir()
        .map_err(|e| format!("mariadb: tempdir: {e}"))?;
    let log = dir.path().join("server.log");
    let data = dir.path().join("data");
    let socket = dir.path().join("mysqld.sock");
    let user = if is_root() {
        "--user=root"
    } else {
        "--skip-name-resolve"
    };
    run(
        "mariadb-install-db",
        Command::new("mariadb-install-db")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .args([
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                user,
            ]),
        &log,
    )?;
    let port = free_port();
    let (child, (program, args)) = spawn(
        "mariadbd",
        Command::new("mariadbd")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", socket.display()))
            .arg(format!(
                "--pid-file={}",
                dir.path().join("mysqld.pid").display()
            ))
            .arg(format!("--port={port}"))
            .args([
                "--bind-address=127.0.0.1",
                user,
                "--skip-log-bin",
                "--innodb-buffer-pool-size=32M",
                "--innodb-flush-log-at-trx-commit=2",
                "--max-allowed-packet=64M",
            ]),
        &log,
    )?;
    let mut server = Server {
        kind: Kind::MariaDb,
        port,
        child,
        program,
        args,
        stop_signal: "-TERM",
        dir,
    };
    let root = sqlx::mysql::MySqlConnectOptions::new()
        .socket(&socket)
        .username("root");
    wait_ready(&mut server, "mariadbd", &log, || async {
        use sqlx::Connection;
        let mut c = sqlx::MySqlConnection::connect_with(&root)
            .await
            .map_err(|e| e.to_string())?;
        for stmt in [
            "CREATE DATABASE IF NOT EXISTS shoal".to_string(),
            format!("CREATE USER IF NOT EXISTS 'shoal'@'%' IDENTIFIED BY '{PASSWORD}'"),
            format!("CREATE USER IF NOT EXISTS 'shoal'@'localhost' IDENTIFIED BY '{PASSWORD}'"),
            "GRANT ALL ON shoal.* TO 'shoal'@'%'".to_string(),
            "GRANT ALL ON shoal.* TO 'shoal'@'localhost'".to_string(),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(stmt))
                .execute(&mut c)
                .await
                .map_err(|e| e.to_string())?;
        }
        c.close().await.map_err(|e| e.to_string())
    })
    .await?;
    Ok(server)
}

/// Redis: `redis-server` on a free port with a password, no persistence.
pub async fn redis() -> Result<Server, String> {
    let dir = tempfile::Builder::new()
        .prefix("shoal-redis-")
        .tempdir()
        .map_err(|e| format!("redis: tempdir: {e}"))?;
    let log = dir.path().join("server.log");
    let port = free_port();
    let (child, (program, args)) = spawn(
        "redis-server",
        Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--requirepass", PASSWORD, "--daemonize", "no"])
            .arg("--dir")
            .arg(dir.path()),
        &log,
    )?;
    let mut server = Server {
        kind: Kind::Redis,
        port,
        child,
        program,
        args,
        stop_signal: "-TERM",
        dir,
    };
    let url = format!("redis://:{PASSWORD}@127.0.0.1:{port}/0");
    wait_ready(&mut server, "redis-server", &log, || async {
        let client = redis::Client::open(url.as_str()).map_err(|e| e.to_string())?;
        let mut c = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| e.to_string())?;
        redis::cmd("PING")
            .query_async::<String>(&mut c)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    })
    .await?;
    Ok(server)
}
