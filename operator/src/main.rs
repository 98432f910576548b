//! `operator`: the seccomp-operator controllers and admission webhooks (a Deployment).

use clap::Parser;

/// Controllers and admission webhooks of seccomp-operator.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Address for /healthz, /readyz and /metrics.
    #[arg(long, env = "LISTEN_ADDR", default_value = "0.0.0.0:8080")]
    listen: std::net::SocketAddr,
}

fn main() -> anyhow::Result<()> {
    let _args = Args::parse();
    anyhow::bail!("the operator's controllers are not implemented yet")
}
