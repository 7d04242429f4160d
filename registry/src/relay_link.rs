//! Relay links: `https://host[/prefix]/p/<id>#<key>`.
//!
//! When a presentation does not fit one QR code, the wallet encrypts it
//! (compact JWE, `alg: dir`, `enc: A256GCM`, a fresh 256-bit key), uploads
//! the JWE to the registry's relay (`PUT /v1/relay`) and shows a link to it
//! whose fragment is the key, base64url. The relay never sees the key: a
//! browser does not send the fragment, and neither does this client.
//!
//! The verifier fetches the item once from the relay's API,
//! `GET <base>/v1/relay/<id>` where `<base>` is the link without
//! `/p/<id>#<key>`, with no redirects, a timeout and a body cap, then
//! decrypts it. Anything else is refused: another scheme, plain `http` to a
//! host that is not loopback, credentials or a query in the link, an id that
//! is not 32 hex digits, a key that is not 32 bytes, a JWE header with any
//! other algorithm, encryption, compression or critical extension.

use std::time::Duration;

use josekit::jwe::alg::direct::DirectJweAlgorithm;
use josekit::jwe::{JweDecrypter, JweHeader};
use reqwest::Url;
use vouch_core::b64;

/// Largest relay body fetched, in bytes: the registry's own limit on a
/// relay item.
pub const MAX_RELAY_BODY: usize = 64 << 10;
/// Longest a fetch may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest relay link read, in characters.
pub const MAX_LINK_CHARS: usize = 2048;

/// Why a relay link could not be read, fetched or opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// Not a relay link.
    #[error("not a relay link ({0}); expected https://…/p/<id>#<key>")]
    Link(&'static str),
    /// The link is not a URL.
    #[error("relay link is not a URL: {0}")]
    Url(#[source] url::ParseError),
    /// The HTTP client or the request failed.
    #[error("fetching {url}: {source}")]
    Fetch {
        /// What was fetched (no key: the fragment is never part of it).
        url: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// The relay has no such item.
    #[error("the relay has no item {id}: it expired or was already fetched (a relay item is served once)")]
    Gone {
        /// The item id.
        id: String,
    },
    /// The relay answered with another error.
    #[error("the relay answered HTTP {status} for {url}")]
    Status {
        /// What was fetched.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// The body is over [`MAX_RELAY_BODY`].
    #[error("the relay item is larger than the limit of {MAX_RELAY_BODY} bytes")]
    TooLarge,
    /// The JWE header names something other than `dir` + `A256GCM`.
    #[error("relay item: {0}")]
    Header(String),
    /// The item does not decrypt under the link's key.
    #[error("relay item does not decrypt with the link's key (wrong key or tampered item): {0}")]
    Decrypt(#[source] josekit::JoseError),
    /// The plaintext is not UTF-8.
    #[error("relay item content is not UTF-8 text")]
    NotText,
    /// A link to a relay this verifier does not follow.
    #[error("relay links to {host} are not followed here (policy relay_hosts)")]
    HostNotAllowed {
        /// The link's host and port.
        host: String,
    },
}

/// The relays whose links a verifier follows: any, or those on listed
/// hosts (host and port, the scheme's default port when none is given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayHosts(Option<Vec<(String, u16)>>);

fn host_port(url: &Url) -> Option<(String, u16)> {
    Some((
        url.host_str()?.to_ascii_lowercase(),
        url.port_or_known_default()?,
    ))
}

impl RelayHosts {
    /// Every relay.
    pub fn any() -> Self {
        Self(None)
    }

    /// Only relays on the hosts of `urls` (`https://host[:port]`, or a bare
    /// `host[:port]`, read as https); entries that do not parse are left
    /// out, so an empty or unusable list follows no link.
    pub fn only<'a>(urls: impl IntoIterator<Item = &'a str>) -> Self {
        let hosts = urls
            .into_iter()
            .filter_map(|u| {
                let full = if u.contains("://") {
                    u.to_owned()
                } else {
                    format!("https://{u}")
                };
                Url::parse(&full).ok().as_ref().and_then(host_port)
            })
            .collect();
        Self(Some(hosts))
    }

    /// Whether `link` is on one of the hosts.
    ///
    /// # Errors
    /// [`RelayError::HostNotAllowed`] when it is not.
    pub fn check(&self, link: &RelayLink) -> Result<(), RelayError> {
        let Some(hosts) = &self.0 else {
            return Ok(());
        };
        let here = host_port(&link.base);
        if here.as_ref().is_some_and(|h| hosts.contains(h)) {
            return Ok(());
        }
        Err(RelayError::HostNotAllowed {
            host: here.map_or_else(|| "?".to_owned(), |(h, p)| format!("{h}:{p}")),
        })
    }
}

/// A parsed relay link. Its key is kept out of `Debug`.
#[derive(Clone)]
pub struct RelayLink {
    base: Url,
    id: String,
    key: [u8; 32],
}

impl std::fmt::Debug for RelayLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayLink")
            .field("base", &self.base.as_str())
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl RelayLink {
    /// Whether `text` looks like a link (starts with `http://` or
    /// `https://`), before it is checked.
    pub fn looks_like(text: &str) -> bool {
        let lower = text.get(..8).unwrap_or(text).to_ascii_lowercase();
        lower.starts_with("https://") || lower.starts_with("http://")
    }

    /// Reads a relay link.
    ///
    /// # Errors
    /// [`RelayError::Link`] or [`RelayError::Url`]: see the module
    /// documentation for what is refused.
    pub fn parse(text: &str) -> Result<Self, RelayError> {
        let text = text.trim();
        if text.len() > MAX_LINK_CHARS {
            return Err(RelayError::Link("longer than 2048 characters"));
        }
        let url = Url::parse(text).map_err(RelayError::Url)?;
        match url.scheme() {
            "https" => {}
            "http" if crate::client::is_loopback(&url) => {}
            "http" => return Err(RelayError::Link("plain http is allowed only to loopback")),
            _ => return Err(RelayError::Link("not an https link")),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(RelayError::Link("the link carries credentials"));
        }
        if url.query().is_some() {
            return Err(RelayError::Link("the link has a query"));
        }
        let fragment = url.fragment().ok_or(RelayError::Link("no #key fragment"))?;
        let key = b64::decode_array::<32>(fragment)
            .map_err(|_| RelayError::Link("the #key is not 32 bytes of base64url"))?;
        let path = url.path();
        let (prefix, id) = path
            .rsplit_once("/p/")
            .ok_or(RelayError::Link("the path does not end in /p/<id>"))?;
        if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(RelayError::Link("the id is not 32 hex digits"));
        }
        let mut base = url.clone();
        base.set_fragment(None);
        base.set_path(prefix);
        Ok(Self {
            base,
            id: id.to_ascii_lowercase(),
            key,
        })
    }

    /// The item id (32 hex digits).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Where the item is fetched from: `<base>/v1/relay/<id>` (no key).
    pub fn fetch_url(&self) -> String {
        format!(
            "{}/v1/relay/{}",
            self.base.as_str().trim_end_matches('/'),
            self.id
        )
    }

    /// Fetches the item once and decrypts it: the presentation text.
    ///
    /// # Errors
    /// [`RelayError`]: the fetch, a missing item, a body over
    /// [`MAX_RELAY_BODY`], a header other than `dir` + `A256GCM`, a failed
    /// decryption, or a plaintext that is not UTF-8.
    pub async fn fetch(&self) -> Result<String, RelayError> {
        let url = self.fetch_url();
        let fetch = |source| RelayError::Fetch {
            url: url.clone(),
            source,
        };
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(fetch)?;
        let mut resp = http.get(&url).send().await.map_err(fetch)?;
        match resp.status().as_u16() {
            200 => {}
            404 => {
                return Err(RelayError::Gone {
                    id: self.id.clone(),
                })
            }
            status => return Err(RelayError::Status { url, status }),
        }
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_RELAY_BODY as u64)
        {
            return Err(RelayError::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(fetch)? {
            if body.len() + chunk.len() > MAX_RELAY_BODY {
                return Err(RelayError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        let jwe = std::str::from_utf8(&body)
            .map_err(|_| RelayError::Header("not a compact JWE (not text)".into()))?;
        open(jwe.trim(), &self.key)
    }
}

/// Decrypts a compact JWE with `alg: dir`, `enc: A256GCM` under `key`.
///
/// # Errors
/// [`RelayError::Header`] for any other header (a compression, `crit` or
/// other algorithm is refused before decryption); [`RelayError::Decrypt`];
/// [`RelayError::NotText`].
pub fn open(jwe: &str, key: &[u8; 32]) -> Result<String, RelayError> {
    if jwe.split('.').count() != 5 {
        return Err(RelayError::Header(
            "not a compact JWE (five dot-separated parts)".into(),
        ));
    }
    let decrypter = DirectJweAlgorithm::Dir
        .decrypter_from_bytes(key)
        .map_err(RelayError::Decrypt)?;
    let refused = std::cell::RefCell::new(None);
    let result = josekit::jwe::deserialize_compact_with_selector(jwe, |header: &JweHeader| {
        Ok(match check_header(header) {
            Ok(()) => Some(&decrypter as &dyn JweDecrypter),
            Err(why) => {
                *refused.borrow_mut() = Some(why);
                None
            }
        })
    });
    if let Some(why) = refused.into_inner() {
        return Err(RelayError::Header(why));
    }
    let (plain, _) = result.map_err(RelayError::Decrypt)?;
    String::from_utf8(plain).map_err(|_| RelayError::NotText)
}

fn check_header(header: &JweHeader) -> Result<(), String> {
    if header.algorithm() != Some("dir") {
        return Err(format!(
            "JWE alg {:?} is refused; only \"dir\"",
            header.algorithm().unwrap_or("none")
        ));
    }
    if header.content_encryption() != Some("A256GCM") {
        return Err(format!(
            "JWE enc {:?} is refused; only \"A256GCM\"",
            header.content_encryption().unwrap_or("none")
        ));
    }
    if header.compression().is_some() {
        return Err("a compressed JWE (zip) is refused".into());
    }
    if header.critical().is_some() {
        return Err("a JWE with critical extensions (crit) is refused".into());
    }
    Ok(())
}

/// Encrypts `plaintext` as a compact JWE (`dir` + `A256GCM`) under `key`:
/// what a wallet uploads to the relay.
///
/// # Errors
/// [`RelayError::Decrypt`] (josekit's error) when encryption fails.
pub fn seal(plaintext: &str, key: &[u8; 32]) -> Result<String, RelayError> {
    let mut header = JweHeader::new();
    header.set_content_encryption("A256GCM");
    let encrypter = DirectJweAlgorithm::Dir
        .encrypter_from_bytes(key)
        .map_err(RelayError::Decrypt)?;
    josekit::jwe::serialize_compact(plaintext.as_bytes(), &header, &encrypter)
        .map_err(RelayError::Decrypt)
}

/// The link to relay item `id` on the registry at `base`, with `key`.
pub fn link(base: &str, id: &str, key: &[u8; 32]) -> String {
    format!("{}/p/{id}#{}", base.trim_end_matches('/'), b64::encode(key))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const ID: &str = "00112233445566778899aabbccddeeff";

    #[test]
    fn parses_a_link_and_derives_the_api_url() {
        let key = [7u8; 32];
        let l = RelayLink::parse(&link("https://reg.example/vouch", ID, &key)).unwrap();
        assert_eq!(l.id(), ID);
        assert_eq!(
            l.fetch_url(),
            format!("https://reg.example/vouch/v1/relay/{ID}")
        );
        assert_eq!(l.key, key);
        assert!(!format!("{l:?}").contains(&b64::encode(key)));
        let l = RelayLink::parse(&link("http://127.0.0.1:7400", ID, &key)).unwrap();
        assert_eq!(
            l.fetch_url(),
            format!("http://127.0.0.1:7400/v1/relay/{ID}")
        );
    }

    #[test]
    fn fail_bad_links() {
        let k = b64::encode([7u8; 32]);
        for bad in [
            format!("http://reg.example/p/{ID}#{k}"),
            format!("ftp://reg.example/p/{ID}#{k}"),
            format!("https://u:p@reg.example/p/{ID}#{k}"),
            format!("https://reg.example/p/{ID}?x=1#{k}"),
            format!("https://reg.example/p/{ID}"),
            format!("https://reg.example/p/{ID}#short"),
            format!("https://reg.example/p/{ID}#{k}A"),
            format!("https://reg.example/q/{ID}#{k}"),
            format!("https://reg.example/p/{}#{k}", &ID[..31]),
            format!("https://reg.example/p/{}z#{k}", &ID[..31]),
            "https://".into(),
            "not a url".into(),
            format!(
                "https://reg.example/p/{ID}#{k}{}",
                "a".repeat(MAX_LINK_CHARS)
            ),
        ] {
            assert!(RelayLink::parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn relay_hosts_follow_only_listed_hosts() {
        let key = [7u8; 32];
        let at = |base: &str| RelayLink::parse(&link(base, ID, &key)).unwrap();
        let only = RelayHosts::only(["https://reg.example", "127.0.0.1:7400", "::bad::"]);
        assert!(only.check(&at("https://reg.example/vouch")).is_ok());
        assert!(only.check(&at("https://REG.example:443")).is_ok());
        assert!(only.check(&at("http://127.0.0.1:7400")).is_ok());
        assert!(matches!(
            only.check(&at("https://evil.example")),
            Err(RelayError::HostNotAllowed { .. })
        ));
        assert!(only.check(&at("https://reg.example:8443")).is_err());
        assert!(only.check(&at("http://127.0.0.1:7401")).is_err());
        assert!(RelayHosts::only([])
            .check(&at("https://reg.example"))
            .is_err());
        assert!(RelayHosts::any().check(&at("https://evil.example")).is_ok());
    }

    #[test]
    fn seals_and_opens() {
        let key = [9u8; 32];
        let jwe = seal("VCH1:ABC", &key).unwrap();
        assert_eq!(open(&jwe, &key).unwrap(), "VCH1:ABC");
    }

    #[test]
    fn fail_wrong_key_tamper_and_other_headers() {
        let key = [9u8; 32];
        let jwe = seal("VCH1:ABC", &key).unwrap();
        assert!(matches!(
            open(&jwe, &[8u8; 32]),
            Err(RelayError::Decrypt(_))
        ));
        // Flip a character of the ciphertext.
        let mut parts: Vec<String> = jwe.split('.').map(str::to_owned).collect();
        let c = parts[3].clone();
        let flipped = if c.starts_with('A') { "B" } else { "A" };
        parts[3] = format!("{flipped}{}", &c[1..]);
        assert!(matches!(
            open(&parts.join("."), &key),
            Err(RelayError::Decrypt(_))
        ));
        assert!(matches!(open("a.b.c", &key), Err(RelayError::Header(_))));
        // Another enc, and a compressed one.
        for header in [
            r#"{"alg":"dir","enc":"A128GCM"}"#,
            r#"{"alg":"dir","enc":"A256GCM","zip":"DEF"}"#,
            r#"{"alg":"A256KW","enc":"A256GCM"}"#,
            r#"{"alg":"dir","enc":"A256GCM","crit":["x"],"x":1}"#,
        ] {
            let mut parts: Vec<String> = jwe.split('.').map(str::to_owned).collect();
            parts[0] = b64::encode(header);
            assert!(
                matches!(open(&parts.join("."), &key), Err(RelayError::Header(_))),
                "{header}"
            );
        }
    }
}
