//! Server-side fetches (`files/save_url`) and their SSRF guard.
//!
//! Security Invariant: the server connects only to public addresses, or to networks the
//! operator listed with `--fetch-allow`. Every hop is checked: a literal address in the URL
//! before connecting, and every DNS answer in the resolver the HTTP client connects through
//! (so a name that resolves, or re-resolves, into private space is refused). Redirects are
//! followed by hand, at most [`MAX_REDIRECTS`], each re-checked the same way.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// Redirects followed at most, as Dropbox documents for save_url.
pub const MAX_REDIRECTS: usize = 5;
/// The longest a fetch may take, as Dropbox allows save_url.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(15 * 60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// A network: an address and a prefix length (`10.0.0.0/8`, `::1/128`, or a bare address).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = s.split_once('/').unwrap_or((s, ""));
        let net: IpAddr = addr
            .parse()
            .map_err(|_| format!("'{s}' is not a network like 10.0.0.0/8"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = if prefix.is_empty() {
            max
        } else {
            prefix
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("'{s}': the prefix length must be 0 to {max}"))?
        };
        Ok(Cidr { net, prefix })
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// An IPv4 address written as IPv6 (`::ffff:10.0.0.1`) is judged as the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// Whether an address is on the public internet: not loopback, private, shared (CGNAT),
/// link-local, multicast, broadcast, unspecified, documentation or unique-local.
pub fn is_public(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(a) => {
            let o = a.octets();
            !(a.is_loopback()
                || a.is_private()
                || a.is_link_local()
                || a.is_multicast()
                || a.is_broadcast()
                || a.is_unspecified()
                || a.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || o[0] >= 240)
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            !(a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] == 0x2001 && s[1] == 0x0db8)
                || (s[0] == 0x64 && s[1] == 0xff9b))
        }
    }
}

/// Which addresses the server may fetch from.
#[derive(Clone, Debug, Default)]
pub struct Guard {
    allow: Arc<Vec<Cidr>>,
}

impl Guard {
    pub fn new(allow: Vec<Cidr>) -> Self {
        Self {
            allow: Arc::new(allow),
        }
    }

    pub fn permits(&self, ip: IpAddr) -> bool {
        is_public(ip) || self.allow.iter().any(|c| c.contains(ip))
    }
}

/// The guard as the HTTP client's resolver: answers only the permitted addresses.
impl reqwest::dns::Resolve for Guard {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = self.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let permitted: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| guard.permits(a.ip()))
                .collect();
            if permitted.is_empty() {
                return Err(Box::new(Refused(format!(
                    "{host} resolves only to addresses this server may not fetch from"
                )))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(permitted.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// A fetch refused by the guard.
#[derive(Debug)]
struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// Why a fetch did not produce a body.
#[derive(Debug, PartialEq, Eq)]
pub enum FetchError {
    /// Not an http(s) URL with a host.
    InvalidUrl(String),
    /// The URL, a redirect or a DNS answer points where the server may not go.
    Refused(String),
    /// The origin failed, answered with an error, or redirected too often.
    Failed(String),
}

/// Fetches with the guard: one client, redirects followed by hand.
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    guard: Guard,
}

impl Fetcher {
    pub fn new(guard: Guard) -> Self {
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(guard.clone()))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("Cubby/", env!("CARGO_PKG_VERSION"), " (save_url)"))
            .build()
            .expect("the HTTP client builds");
        Self { client, guard }
    }

    /// Checks a URL before any connection: scheme, host, and a literal address.
    pub fn check(&self, url: &str) -> Result<reqwest::Url, FetchError> {
        let parsed =
            reqwest::Url::parse(url).map_err(|e| FetchError::InvalidUrl(format!("{url}: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(FetchError::InvalidUrl(format!(
                "{url}: only http and https URLs can be saved"
            )));
        }
        let host = parsed
            .host_str()
            .ok_or_else(|| FetchError::InvalidUrl(format!("{url}: no host")))?;
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = literal.parse::<IpAddr>()
            && !self.guard.permits(ip)
        {
            return Err(FetchError::Refused(format!(
                "{ip} is not an address this server may fetch from"
            )));
        }
        Ok(parsed)
    }

    /// Opens a URL, following at most [`MAX_REDIRECTS`] redirects, each checked.
    pub async fn open(&self, url: &str) -> Result<reqwest::Response, FetchError> {
        let mut url = self.check(url)?;
        for _ in 0..=MAX_REDIRECTS {
            let resp = self.client.get(url.clone()).send().await.map_err(|e| {
                let mut cause = std::error::Error::source(&e);
                let mut refused = false;
                while let Some(c) = cause {
                    refused |= c.downcast_ref::<Refused>().is_some();
                    cause = c.source();
                }
                if refused {
                    FetchError::Refused(format!("{url}: the host's addresses are not allowed"))
                } else {
                    FetchError::Failed(format!("{url}: {e}"))
                }
            })?;
            if resp.status().is_redirection() {
                let next = resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|l| url.join(l).ok())
                    .ok_or_else(|| {
                        FetchError::Failed(format!("{url}: a redirect without a usable Location"))
                    })?;
                url = self.check(next.as_str())?;
                continue;
            }
            if !resp.status().is_success() {
                return Err(FetchError::Failed(format!(
                    "{url}: the server answered {}",
                    resp.status()
                )));
            }
            return Ok(resp);
        }
        Err(FetchError::Failed(format!(
            "more than {MAX_REDIRECTS} redirects"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn public_and_private_addresses() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "ff02::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(ip(private)), "{private}");
        }
        for public in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(ip(public)), "{public}");
        }
    }

    #[test]
    fn networks() {
        let c: Cidr = "127.0.0.0/8".parse().unwrap();
        assert!(c.contains(ip("127.9.9.9")) && !c.contains(ip("128.0.0.1")));
        assert!(
            c.contains(ip("::ffff:127.0.0.1")),
            "mapped addresses count as IPv4"
        );
        let one: Cidr = "::1".parse().unwrap();
        assert!(one.contains(ip("::1")) && !one.contains(ip("::2")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("10.0.0.1")) && !all.contains(ip("::1")));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nonsense".parse::<Cidr>().is_err());
    }

    #[test]
    fn urls_are_checked_before_connecting() {
        let f = Fetcher::new(Guard::default());
        assert!(matches!(
            f.check("ftp://example.com/x"),
            Err(FetchError::InvalidUrl(_))
        ));
        assert!(matches!(
            f.check("not a url"),
            Err(FetchError::InvalidUrl(_))
        ));
        for refused in [
            "http://127.0.0.1/x",
            "http://[::1]:8080/x",
            "http://2130706433/x",
            "http://0x7f.1/x",
            "http://169.254.169.254/latest/meta-data",
            "http://[::ffff:192.168.0.1]/",
        ] {
            assert!(
                matches!(f.check(refused), Err(FetchError::Refused(_))),
                "{refused}"
            );
        }
        assert!(f.check("https://example.com/a.jpg").is_ok());
        let allowed = Fetcher::new(Guard::new(vec!["127.0.0.1/32".parse().unwrap()]));
        assert!(allowed.check("http://127.0.0.1:9/x").is_ok());
        assert!(matches!(
            allowed.check("http://127.0.0.2/x"),
            Err(FetchError::Refused(_))
        ));
    }
}
