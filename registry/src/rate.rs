//! A per-client rate limit: a fixed window per IP address (IPv6 by /64),
//! with a bounded number of clients tracked per window. The relay's uploads
//! and the API's write routes each count under one.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Why a request was not admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RateError {
    /// This client has used up its requests for this window.
    #[error("too many requests from this address; at most {limit} per {window_secs} s")]
    Limited {
        /// Requests per window.
        limit: u32,
        /// The window, seconds.
        window_secs: u64,
    },
    /// Too many different clients in this window.
    #[error("too many clients; try again in {window_secs} s")]
    Busy {
        /// The window, seconds.
        window_secs: u64,
    },
}

/// The counts of the current window.
#[derive(Debug)]
struct Window {
    started: Instant,
    counts: HashMap<IpAddr, u32>,
}

/// A fixed-window counter per client, bounded in clients.
#[derive(Debug)]
pub struct RateLimit {
    per_window: u32,
    window: Duration,
    max_clients: usize,
    current: Mutex<Window>,
}

/// The key a client is counted under: its IPv4 address, or its IPv6 /64
/// (one host usually owns a whole /64).
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut s = v6.segments();
                s[4..].fill(0);
                IpAddr::V6(s.into())
            }
        },
    }
}

impl RateLimit {
    /// A limit of `per_window` requests per client per `window`, tracking
    /// at most `max_clients` clients in a window.
    pub fn new(per_window: u32, window: Duration, max_clients: usize) -> Self {
        Self {
            per_window,
            window,
            max_clients,
            current: Mutex::new(Window {
                started: Instant::now(),
                counts: HashMap::new(),
            }),
        }
    }

    /// Counts one request from `client` (`None` when the address is
    /// unknown, e.g. in-process calls: those share one counter).
    ///
    /// # Errors
    /// [`RateError::Limited`] when the client has used up this window,
    /// [`RateError::Busy`] when the window already tracks `max_clients`
    /// others; the request is not counted then.
    pub fn admit(&self, client: Option<IpAddr>) -> Result<(), RateError> {
        let key = client.map_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), client_key);
        let window_secs = self.window.as_secs();
        let mut current = self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if current.started.elapsed() >= self.window {
            current.started = Instant::now();
            current.counts.clear();
        }
        if !current.counts.contains_key(&key) && current.counts.len() >= self.max_clients {
            return Err(RateError::Busy { window_secs });
        }
        let count = current.counts.entry(key).or_insert(0);
        if *count >= self.per_window {
            return Err(RateError::Limited {
                limit: self.per_window,
                window_secs,
            });
        }
        *count += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ipv6_clients_are_counted_by_slash_64() {
        let a: IpAddr = "2001:db8:1:2:3:4:5:6".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        let v4: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(client_key(v4), "10.0.0.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn a_client_is_refused_past_its_share_and_others_past_the_client_cap() {
        let limit = RateLimit::new(2, Duration::from_secs(3600), 2);
        let a = Some("10.0.0.1".parse().unwrap());
        let b = Some("10.0.0.2".parse().unwrap());
        let c = Some("10.0.0.3".parse().unwrap());
        limit.admit(a).unwrap();
        limit.admit(a).unwrap();
        assert!(matches!(
            limit.admit(a),
            Err(RateError::Limited { limit: 2, .. })
        ));
        limit.admit(b).unwrap();
        assert!(matches!(limit.admit(c), Err(RateError::Busy { .. })));
    }
}
