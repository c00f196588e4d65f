//! Ports for private servers, picked where the OS never hands out ports of its own.

use anyhow::bail;

/// Lowest port handed out; below it sit the well-known services (5432, 5672, 6379 …).
const LOWEST: u16 = 10_000;

/// A port free on 127.0.0.1 right now, below the kernel's ephemeral range.
///
/// A server is told its port before it binds it. A port from `bind(0)` is from the ephemeral
/// range, where in that gap any outgoing connection or another test's `bind(0)` may take it;
/// below the range only another random pick like this one can, one in ~20,000.
///
/// # Errors
/// When 50 random picks were all taken.
pub fn unclaimed() -> anyhow::Result<u16> {
    let ceiling = ephemeral_low().max(LOWEST + 1000);
    for _ in 0..50 {
        let span = u128::from(ceiling - LOWEST);
        let candidate = LOWEST + (uuid::Uuid::new_v4().as_u128() % span) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", candidate)).is_ok() {
            return Ok(candidate);
        }
    }
    bail!("no free port between {LOWEST} and {ceiling}")
}

/// The first port of the kernel's ephemeral range (Linux default 32768).
fn ephemeral_low() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_picked_port_is_below_the_ephemeral_range_and_bindable() {
        let port = unclaimed().unwrap();
        assert!((LOWEST..ephemeral_low().max(LOWEST + 1000)).contains(&port));
        assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_ok());
    }
}
