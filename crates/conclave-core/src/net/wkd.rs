//! Where keys are found on the web: the Web Key Directory
//! (draft-koch-openpgp-webkey-service: the advanced method at
//! `openpgpkey.DOMAIN`, then the direct one at `DOMAIN`) and a VKS keyserver
//! (the protocol of keys.openpgp.org: `by-fingerprint`, `upload`,
//! `request-verify`). This module names the URLs and fetches bytes; what the
//! bytes are worth (the same key? only its own signatures?) is decided
//! above, in the relay.

use super::http::{self, HttpError, HttpSettings};

/// The WKD hash of a local part: z-base-32 of the SHA-1 of it in lowercase.
pub fn hash(local: &str) -> String {
    use nettle::hash::insecure_do_not_use::Sha1;
    use nettle::hash::Hash as _;
    let mut h = Sha1::default();
    h.update(local.to_lowercase().as_bytes());
    let mut digest = [0u8; 20];
    h.digest(&mut digest);
    zbase32(&digest)
}

fn zbase32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ybndrfg8ejkmcpqxot1uwisza345h769";
    let mut out = String::new();
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            let i = ((acc >> bits) & 31) as usize;
            out.push(char::from(ALPHABET.get(i).copied().unwrap_or(b'y')));
        }
    }
    if bits > 0 {
        let i = ((acc << (5 - bits)) & 31) as usize;
        out.push(char::from(ALPHABET.get(i).copied().unwrap_or(b'y')));
    }
    out
}

/// An address split into its local part and its domain (lowercase). Only
/// a domain name on the internet is taken: not an address literal, not a
/// single label (`localhost`, a name of the local network), so a
/// subscriber's address cannot point the list's lookups at the owner's own
/// machine or network.
pub fn split(address: &str) -> Option<(String, String)> {
    let (local, domain) = address.trim().rsplit_once('@')?;
    let domain = domain.to_ascii_lowercase();
    if local.is_empty() || !http::is_internet_name(&domain) {
        return None;
    }
    Some((local.to_string(), domain))
}

fn query(local: &str) -> String {
    let mut out = String::new();
    for b in local.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(b) {
            out.push(char::from(*b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The advanced method's URL for `address`.
pub fn advanced_url(address: &str) -> Option<String> {
    let (local, domain) = split(address)?;
    Some(format!(
        "https://openpgpkey.{domain}/.well-known/openpgpkey/{domain}/hu/{}?l={}",
        hash(&local),
        query(&local)
    ))
}

/// The direct method's URL for `address`.
pub fn direct_url(address: &str) -> Option<String> {
    let (local, domain) = split(address)?;
    Some(format!(
        "https://{domain}/.well-known/openpgpkey/hu/{}?l={}",
        hash(&local),
        query(&local)
    ))
}

/// What a lookup found.
#[derive(Debug, Clone)]
pub struct Found {
    /// The URL that answered.
    pub url: String,
    /// The key data (binary or armored; one or more keys).
    pub bytes: Vec<u8>,
}

/// Asks WKD for `address`: the advanced method, then the direct one.
/// `Ok(None)` when neither has a key for it (or its domain is not one
/// on the internet, see [`split`]).
pub async fn lookup(settings: &HttpSettings, address: &str) -> Result<Option<Found>, HttpError> {
    // An address whose domain is not one on the internet has no WKD.
    let (Some(advanced), Some(direct)) = (advanced_url(address), direct_url(address)) else {
        return Ok(None);
    };
    let mut last_error = None;
    for url in [advanced, direct] {
        match http::get(settings, &url).await {
            Ok(r) if r.ok() && !r.body.is_empty() => {
                return Ok(Some(Found {
                    url: r.url,
                    bytes: r.body,
                }))
            }
            Ok(_) => last_error = None,
            // A certificate the owner must judge is not hidden behind the
            // other method's answer.
            Err(HttpError::Tls(t)) if !matches!(t, super::tls::TlsError::Connect { .. }) => {
                return Err(HttpError::Tls(t))
            }
            // A server that answered, but with too much or with garbage,
            // is reported, not hidden behind the other method's 404.
            Err(e @ (HttpError::TooLarge { .. } | HttpError::Protocol { .. })) => return Err(e),
            Err(e) => last_error = Some(e),
        }
    }
    match last_error {
        Some(e) => Err(e),
        None => Ok(None),
    }
}

/// The keyserver's base URL without a trailing slash, or None when off
/// (empty).
pub fn keyserver_base(setting: &str) -> Option<String> {
    let s = setting.trim().trim_end_matches('/');
    (!s.is_empty()).then(|| s.to_string())
}

/// The host name of a keyserver URL (`https://HOST[:PORT]…`).
pub fn keyserver_host(base: &str) -> Option<String> {
    http::Url::parse(base).ok().map(|u| u.host)
}

/// Asks the keyserver at `base` for the key with fingerprint `fpr` (hex).
/// `Ok(None)` when it has none (404).
pub async fn vks_by_fingerprint(
    settings: &HttpSettings,
    base: &str,
    fpr: &str,
) -> Result<Option<Found>, HttpError> {
    let url = format!("{base}/vks/v1/by-fingerprint/{}", fpr.to_ascii_uppercase());
    let r = http::get(settings, &url).await?;
    if r.status == 404 || (r.ok() && r.body.is_empty()) {
        return Ok(None);
    }
    if !r.ok() {
        return Err(status_error(&r));
    }
    Ok(Some(Found {
        url: r.url,
        bytes: r.body,
    }))
}

fn status_error(r: &http::Response) -> HttpError {
    let said = String::from_utf8_lossy(r.body.get(..200).unwrap_or(&r.body));
    HttpError::Protocol {
        url: r.url.clone(),
        detail: format!(
            "status {}: {}",
            r.status,
            crate::text::clean(
                &http::json_string(&said, "error").unwrap_or_else(|| said.to_string())
            )
        ),
    }
}

/// What an upload answered.
#[derive(Debug, Clone)]
pub struct Uploaded {
    /// The token for `request-verify`.
    pub token: String,
    /// The fingerprint the server read.
    pub key_fpr: String,
}

/// Uploads an armored public key (`POST /vks/v1/upload`).
pub async fn vks_upload(
    settings: &HttpSettings,
    base: &str,
    armored: &str,
) -> Result<Uploaded, HttpError> {
    let url = format!("{base}/vks/v1/upload");
    let body = format!("{{\"keytext\":{}}}", http::json_quote(armored));
    let r = http::post(settings, &url, "application/json", body.as_bytes()).await?;
    if !r.ok() {
        return Err(status_error(&r));
    }
    let text = String::from_utf8_lossy(&r.body);
    let token = http::json_string(&text, "token").ok_or_else(|| HttpError::Protocol {
        url: r.url.clone(),
        detail: "the answer to the upload carries no token".into(),
    })?;
    Ok(Uploaded {
        token,
        key_fpr: http::json_string(&text, "key_fpr").unwrap_or_default(),
    })
}

/// Asks the keyserver to mail a verification link to each of `addresses`
/// (`POST /vks/v1/request-verify`).
pub async fn vks_request_verify(
    settings: &HttpSettings,
    base: &str,
    token: &str,
    addresses: &[String],
) -> Result<(), HttpError> {
    let url = format!("{base}/vks/v1/request-verify");
    let list: Vec<String> = addresses.iter().map(|a| http::json_quote(a)).collect();
    let body = format!(
        "{{\"token\":{},\"addresses\":[{}]}}",
        http::json_quote(token),
        list.join(",")
    );
    let r = http::post(settings, &url, "application/json", body.as_bytes()).await?;
    if !r.ok() {
        return Err(status_error(&r));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_and_urls_follow_the_draft() {
        // The example of draft-koch-openpgp-webkey-service.
        assert_eq!(hash("Joe.Doe"), "iy9q119eutrkn8s1mk4r39qejnbu3n5q");
        assert_eq!(
            advanced_url("Joe.Doe@Example.ORG").unwrap(),
            "https://openpgpkey.example.org/.well-known/openpgpkey/example.org/hu/iy9q119eutrkn8s1mk4r39qejnbu3n5q?l=Joe.Doe"
        );
        assert_eq!(
            direct_url("a+b@example.org").unwrap(),
            format!(
                "https://example.org/.well-known/openpgpkey/hu/{}?l=a%2Bb",
                hash("a+b")
            )
        );
        assert!(advanced_url("nobody").is_none());
        assert!(advanced_url("x@evil/path").is_none());
        for near in [
            "x@localhost",
            "x@127.0.0.1",
            "x@[::1]",
            "x@a.localhost",
            "x@intranet",
        ] {
            assert!(advanced_url(near).is_none(), "{near}");
        }
        assert_eq!(
            keyserver_base(" https://k.test/ ").as_deref(),
            Some("https://k.test")
        );
        assert_eq!(keyserver_base(""), None);
        assert_eq!(
            keyserver_host("https://k.test:8443").as_deref(),
            Some("k.test")
        );
    }
}
