//! URI handling for GP Amd B: resolving `X-Admin-Next-URI` (RFC 3986 §5.2) and the origin
//! of a URL (RFC 6454), with IDNA host names in Punycode (RFC 3492).

/// Errors from [`resolve_uri`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UriError {
    /// White space, a control character or a non-ASCII character.
    #[error("invalid character in uri")]
    InvalidCharacter,
}

/// The parts of a URI reference (RFC 3986 §3), the fragment dropped.
struct UriParts<'a> {
    scheme: Option<&'a str>,
    authority: Option<&'a str>,
    path: &'a str,
    query: Option<&'a str>,
}

fn split_uri(uri: &str) -> UriParts<'_> {
    let uri = uri.split_once('#').map_or(uri, |(u, _)| u);
    let (uri, query) = match uri.split_once('?') {
        Some((u, q)) => (u, Some(q)),
        None => (uri, None),
    };
    // A scheme is letters, digits, "+", "-" and "." before the first ":", starting with a
    // letter (RFC 3986 §3.1); a ":" after a "/" belongs to the path.
    let scheme_end = uri.find(':').filter(|i| {
        let candidate = uri.get(..*i).unwrap_or("");
        candidate.starts_with(|c: char| c.is_ascii_alphabetic())
            && candidate
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    });
    let (scheme, rest) = match scheme_end {
        Some(i) => (uri.get(..i), uri.get(i + 1..).unwrap_or("")),
        None => (None, uri),
    };
    let (authority, path) = match rest.strip_prefix("//") {
        Some(after) => {
            let end = after.find('/').unwrap_or(after.len());
            (after.get(..end), after.get(end..).unwrap_or(""))
        }
        None => (None, rest),
    };
    UriParts {
        scheme,
        authority,
        path,
        query,
    }
}

/// Removes "." and ".." segments (RFC 3986 §5.2.4).
fn remove_dot_segments(path: &str) -> String {
    fn pop_segment(out: &mut String) {
        // Cut at a '/' (a char boundary) by bytes: `String::truncate`'s boundary assertion
        // would bring a panic text into the wasm (issue 18).
        let mut bytes = std::mem::take(out).into_bytes();
        let cut = bytes.iter().rposition(|&b| b == b'/').unwrap_or(0);
        bytes.truncate(cut);
        *out = String::from_utf8(bytes).unwrap_or_default();
    }
    let mut input = path;
    let mut out = String::with_capacity(path.len());
    while !input.is_empty() {
        if let Some(rest) = input.strip_prefix("../") {
            input = rest;
        } else if let Some(rest) = input.strip_prefix("./") {
            input = rest;
        } else if input.starts_with("/./") {
            input = input.get(2..).unwrap_or("");
        } else if input == "/." {
            input = "/";
        } else if input.starts_with("/../") {
            input = input.get(3..).unwrap_or("");
            pop_segment(&mut out);
        } else if input == "/.." {
            input = "/";
            pop_segment(&mut out);
        } else if input == "." || input == ".." {
            input = "";
        } else {
            let start = usize::from(input.starts_with('/'));
            let end = input
                .get(start..)
                .and_then(|s| s.find('/'))
                .map_or(input.len(), |i| i + start);
            out.push_str(input.get(..end).unwrap_or(""));
            input = input.get(end..).unwrap_or("");
        }
    }
    out
}

/// The origin of an absolute http(s) URL, serialised as the WHATWG URL standard does
/// (`new URL(url).origin`, RFC 6454 §6.2): `scheme://host[:port]` with the scheme and host
/// lowercased, user info dropped, the port left out when it is the scheme's default (80 for
/// http, 443 for https; leading zeros ignored), and a non-ASCII host label written in
/// Punycode with the `xn--` prefix (RFC 3492, IDNA). This is the one origin rule of the
/// crate: the JS API approves servers by `URL.origin`, which this matches. `None` for a
/// relative URL, another scheme, an empty host or a port that is not a number up to 65535.
///
/// The URL must spell `http://` or `https://` (any case) and a non-empty authority; the rest
/// is read by the platform's URL parser where there is one. In the browser (and Node.js) that
/// is the engine's own `URL` (WHATWG URL §4.3, the parser `fetch` uses, with UTS #46 IDNA):
/// about 1.3 KB of the gzipped bundle less than the Rust reader (issue 18), and the origin
/// the user approved and the one the session is held to come from one parser. It is a pure
/// function of the platform, no I/O: the one `web_sys` name in the session (it took over from
/// the `js_sys` lower-casing of non-ASCII hosts that was here before). Natively the
/// Rust reader below serves; it does not apply UTS #46's full mapping (NFC, width folding):
/// a host is lowercased character by character, which covers hosts typed in their usual form.
pub fn origin(url: &str) -> Option<String> {
    // A byte search rather than `split_once("://")`: see `forbidden_host_char`.
    let at = url.as_bytes().windows(3).position(|w| w == b"://")?;
    let (scheme, rest) = (url.get(..at)?, url.get(at + 3..)?);
    if !scheme.eq_ignore_ascii_case("https") && !scheme.eq_ignore_ascii_case("http") {
        return None;
    }
    // The authority ends at the first '/', '?' or '#'; it may not be empty.
    let end = rest
        .bytes()
        .position(|b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len());
    let authority = rest.get(..end)?;
    // The host and port, after any user info. Checked here, not left to the platform's
    // parser: engines differ on these (Chrome percent-encodes a space in a host, Node.js
    // refuses it), and percent-decoding is not done.
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host_port.is_empty() || host_port.chars().any(forbidden_host_char) {
        return None;
    }
    #[cfg(target_arch = "wasm32")]
    return web_sys::Url::new(url).ok().map(|parsed| parsed.origin());
    #[cfg(not(target_arch = "wasm32"))]
    native::origin(scheme, host_port)
}

/// A WHATWG URL "forbidden host code point" (URL §3.1) that has no place in a host and port,
/// or '%' (percent-decoding is not done). `:` and the brackets of an IPv6 literal pass.
/// A byte table rather than `str::contains(char)`, whose search of a non-ASCII char brings
/// core's substring searcher and its panic formatting into the wasm (issue 18).
fn forbidden_host_char(c: char) -> bool {
    c.is_control() || u8::try_from(c).is_ok_and(|b| b" #%/<>?@\\^|".contains(&b))
}

/// The Rust reader of [`origin`]'s authority, where no platform parser is at hand.
#[cfg(not(target_arch = "wasm32"))]
pub(super) mod native {
    /// `scheme://host[:port]` of an http(s) `scheme` and `host_port` (host checked and
    /// lowercased, default port left out).
    pub(super) fn origin(scheme: &str, host_port: &str) -> Option<String> {
        let (scheme, default_port) = if scheme.eq_ignore_ascii_case("https") {
            ("https", 443)
        } else {
            ("http", 80)
        };
        // An IPv6 literal keeps its colons inside brackets.
        let (host, port) = match host_port.rfind(':') {
            Some(i) if !host_port.get(i..)?.contains(']') => {
                (host_port.get(..i)?, Some(host_port.get(i + 1..)?))
            }
            _ => (host_port, None),
        };
        let valid_host = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Some(ipv6) => {
                !ipv6.is_empty()
                    && ipv6
                        .chars()
                        .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
            }
            None => !host.is_empty() && !host.contains(['[', ']', ':']),
        };
        if !valid_host {
            return None;
        }
        let port = match port {
            None | Some("") => None,
            Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => {
                let digits = p.trim_start_matches('0');
                let n: u32 = if digits.is_empty() {
                    0
                } else if digits.len() > 5 {
                    return None;
                } else {
                    digits.parse().ok()?
                };
                if n > 65_535 {
                    return None;
                }
                (n != default_port).then_some(n)
            }
            Some(_) => return None,
        };
        let host = ascii_host(host)?;
        Some(match port {
            Some(port) => format!("{scheme}://{host}:{port}"),
            None => format!("{scheme}://{host}"),
        })
    }

    /// The host lowercased, each non-ASCII label as `xn--` and its Punycode.
    fn ascii_host(host: &str) -> Option<String> {
        if host.is_ascii() {
            return Some(host.to_ascii_lowercase());
        }
        let mut out = String::with_capacity(host.len());
        for (i, label) in host.split('.').enumerate() {
            if i > 0 {
                out.push('.');
            }
            // Unicode's default lowercase mapping (Unicode §3.13, SpecialCasing).
            let label = label.to_lowercase();
            if label.is_ascii() {
                out.push_str(&label);
            } else {
                out.push_str("xn--");
                out.push_str(&punycode(&label)?);
            }
        }
        Some(out)
    }

    /// Punycode encoding of one label (RFC 3492 §6.3, parameters of §5); `None` on overflow.
    pub(in crate::session) fn punycode(input: &str) -> Option<String> {
        const BASE: u32 = 36;
        const T_MIN: u32 = 1;
        const T_MAX: u32 = 26;
        const SKEW: u32 = 38;
        const DAMP: u32 = 700;
        fn adapt(mut delta: u32, points: u32, first: bool) -> u32 {
            delta /= if first { DAMP } else { 2 };
            // points >= 1 (handled + 1); `checked_div` keeps the zero-divisor panic out.
            delta += delta.checked_div(points).unwrap_or(0);
            let mut k = 0;
            while delta > ((BASE - T_MIN) * T_MAX) / 2 {
                delta /= BASE - T_MIN;
                k += BASE;
            }
            k + (BASE - T_MIN + 1) * delta / (delta + SKEW)
        }
        fn digit(d: u32) -> char {
            // 0..=25 are a..z, 26..=35 are 0..9.
            let d = u8::try_from(d).unwrap_or(0);
            char::from(if d < 26 { b'a' + d } else { b'0' + (d - 26) })
        }
        let code_points: Vec<u32> = input.chars().map(u32::from).collect();
        let mut out: String = input.chars().filter(char::is_ascii).collect();
        let basic = u32::try_from(out.len()).ok()?;
        let mut handled = basic;
        if basic > 0 {
            out.push('-');
        }
        let (mut n, mut delta, mut bias) = (0x80u32, 0u32, 72u32);
        let total = u32::try_from(code_points.len()).ok()?;
        while handled < total {
            let m = code_points.iter().copied().filter(|&c| c >= n).min()?;
            delta = delta.checked_add((m - n).checked_mul(handled + 1)?)?;
            n = m;
            for &c in &code_points {
                if c < n {
                    delta = delta.checked_add(1)?;
                }
                if c == n {
                    let mut q = delta;
                    let mut k = BASE;
                    loop {
                        // T_MIN if k <= bias, T_MAX if k >= bias + T_MAX, else k - bias (§6.3);
                        // the clamp shows t < BASE, so no zero-divisor panic below.
                        let t = k.saturating_sub(bias).clamp(T_MIN, T_MAX);
                        if q < t {
                            break;
                        }
                        out.push(digit(t + (q - t) % (BASE - t)));
                        q = (q - t) / (BASE - t);
                        k += BASE;
                    }
                    out.push(digit(q));
                    bias = adapt(delta, handled + 1, handled == basic);
                    delta = 0;
                    handled += 1;
                }
            }
            delta = delta.checked_add(1)?;
            n = n.checked_add(1)?;
        }
        Some(out)
    }
}

/// Resolves a URI reference against a base URI (RFC 3986 §5.2), as a GP client resolves
/// `X-Admin-Next-URI`: an absolute URL replaces the base, `//host/...` keeps the scheme, an
/// absolute path keeps scheme and host, a relative path replaces the base's last segment, a
/// lone `?query` keeps the base path. The base may itself lack scheme and host
/// ("/server/adminagent?cmd=1"), giving a path the page's fetch resolves. Fragments are
/// dropped. The query is kept verbatim.
pub fn resolve_uri(base: &str, reference: &str) -> Result<String, UriError> {
    let invalid = |c: char| !c.is_ascii() || c.is_ascii_control() || c == ' ';
    if reference.contains(invalid) || base.contains(invalid) {
        return Err(UriError::InvalidCharacter);
    }
    let b = split_uri(base);
    let r = split_uri(reference);
    let (scheme, authority, path, query);
    if r.scheme.is_some() {
        scheme = r.scheme;
        authority = r.authority;
        path = remove_dot_segments(r.path);
        query = r.query;
    } else if r.authority.is_some() {
        scheme = b.scheme;
        authority = r.authority;
        path = remove_dot_segments(r.path);
        query = r.query;
    } else {
        scheme = b.scheme;
        authority = b.authority;
        if r.path.is_empty() {
            path = b.path.to_owned();
            query = r.query.or(b.query);
        } else {
            query = r.query;
            if r.path.starts_with('/') {
                path = remove_dot_segments(r.path);
            } else {
                let merged = if b.authority.is_some() && b.path.is_empty() {
                    format!("/{}", r.path)
                } else {
                    let dir = b
                        .path
                        .rfind('/')
                        .map_or("", |i| b.path.get(..=i).unwrap_or(""));
                    format!("{dir}{}", r.path)
                };
                path = remove_dot_segments(&merged);
            }
        }
    }
    let mut out = String::new();
    if let Some(s) = scheme {
        out.push_str(s);
        out.push(':');
    }
    if let Some(a) = authority {
        out.push_str("//");
        out.push_str(a);
    }
    out.push_str(&path);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    Ok(out)
}
