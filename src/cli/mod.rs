//! The `plaza` command's subcommands other than `serve`: most talk to a running relay over HTTP;
//! `plaza store …` works on a stopped relay's store.

pub mod admin;
pub mod store;

/// The base URL of the relay this configuration runs: its listen address, on loopback when it listens
/// on every address (0.0.0.0 or ::).
pub fn local_base(config: &plaza::config::Config) -> anyhow::Result<String> {
    let mut addr = config.listen_addr()?;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    Ok(format!("http://{addr}"))
}
