//! A development admin server over the in-memory fake cluster ([`MemoryBackend`]).
//!
//! `cargo run -p shoal-admin --example dev-server -- --port 19081`
//! then open http://127.0.0.1:19081/ui/ and type the admin token.
//! Used by `scripts/schemathesis.sh` and the UI test. Emits a fake membership event every
//! few seconds so the live event list has something to show.

use std::{sync::Arc, time::Duration};

use clap::Parser;
use shoal_admin::{AdminConfig, MemberState, MemoryBackend};

#[derive(Parser)]
struct Args {
    /// Port on 127.0.0.1 (0 = any free port; the chosen one is printed).
    #[arg(long, default_value_t = 19081)]
    port: u16,
    #[arg(long, default_value = "dev-admin-token-0123456789")]
    admin_token: String,
    #[arg(long, default_value = "dev-read-token-0123456789")]
    read_token: String,
    /// Do not emit the periodic fake membership events.
    #[arg(long)]
    quiet: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = AdminConfig {
        bind: ([127, 0, 0, 1], args.port).into(),
        admin_token: Some(args.admin_token),
        read_token: Some(args.read_token),
        tls: None,
    };
    config.validate()?;
    let listener = tokio::net::TcpListener::bind(config.bind).await?;
    println!(
        "dev-server listening on http://{}/ui/",
        listener.local_addr()?
    );
    let backend = Arc::new(MemoryBackend::new());
    if !args.quiet {
        tokio::spawn(flap(backend.clone()));
    }
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    shoal_admin::serve(listener, backend, config, shutdown).await?;
    Ok(())
}

/// node3 turns suspect and alive again, forever: live events for the UI.
async fn flap(backend: Arc<MemoryBackend>) {
    let mut tick = tokio::time::interval(Duration::from_secs(7));
    let mut suspect = false;
    loop {
        tick.tick().await;
        suspect = !suspect;
        let (state, reason) = if suspect {
            (
                MemberState::Suspect,
                "missed 3 beacons; TCP check under way",
            )
        } else {
            (MemberState::Alive, "TCP check answered")
        };
        let _ = backend.set_member_state("node3", state, reason);
    }
}
