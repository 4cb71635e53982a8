//! `codegen-sentinel healthcheck`: exit 0 when the local daemon answers ready (container
//! HEALTHCHECK). Reads `server.listen` from the config; a wildcard address is reached on loopback.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::{config_source, Failure};

/// How long the daemon has to answer.
const TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// Config file [default: $SENTINEL_CONFIG, then ./sentinel.yaml].
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Ask this address instead of the config's `server.listen`.
    #[arg(long)]
    pub addr: Option<SocketAddr>,
}

pub async fn run(args: HealthcheckArgs) -> Result<(), Failure> {
    let addr = match args.addr {
        Some(addr) => addr,
        None => {
            config_source::required(args.config.as_deref())?
                .server
                .listen
        }
    };
    let url = format!("http://{}/readyz", reachable(addr));
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .map_err(|e| Failure::Runtime(e.into()))?;
    let response = client
        .get(&url)
        .send()
        .await
        .map_err(|e| Failure::Runtime(anyhow::anyhow!("{url}: {e}")))?;
    if response.status().is_success() {
        println!("ready");
        Ok(())
    } else {
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        Err(Failure::Runtime(anyhow::anyhow!(
            "not ready ({status}): {}",
            body.trim()
        )))
    }
}

/// The address to connect to for a listen address (`0.0.0.0` and `::` mean loopback).
fn reachable(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_are_reached_on_loopback() {
        assert_eq!(
            reachable("0.0.0.0:8787".parse().unwrap()),
            "127.0.0.1:8787".parse().unwrap()
        );
        assert_eq!(
            reachable("[::]:1".parse().unwrap()),
            "[::1]:1".parse().unwrap()
        );
        assert_eq!(
            reachable("10.1.2.3:80".parse().unwrap()),
            "10.1.2.3:80".parse().unwrap()
        );
    }
}
