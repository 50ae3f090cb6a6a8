//! The cookies of one card update session, for platforms whose HTTP client keeps none
//! (Node.js's `fetch`, the native agent): per origin, sent back to that origin only, a
//! `Set-Cookie` replacing a cookie of the same name (RFC 6265 §5.3 step 11, reduced to what
//! a card update session needs: no paths, domains or expiry dates). The browser build and
//! the agent share this one jar.

/// Cookies set by servers, per origin.
#[derive(Debug, Clone, Default)]
pub struct CookieJar {
    /// `(origin, name, value)` in the order first set.
    entries: Vec<(String, String, String)>,
}

impl CookieJar {
    /// Remembers one `Set-Cookie` value received from `origin`. A `Max-Age` of zero or less
    /// removes the cookie (RFC 6265 §5.2.2); other attributes are ignored.
    pub fn store(&mut self, origin: &str, set_cookie: &str) {
        let mut parts = set_cookie.split(';');
        let Some((name, value)) = parts.next().and_then(|pair| pair.split_once('=')) else {
            return;
        };
        let (name, value) = (name.trim(), value.trim());
        if name.is_empty() {
            return;
        }
        let expired = parts.any(|attribute| {
            attribute.split_once('=').is_some_and(|(key, age)| {
                key.trim().eq_ignore_ascii_case("max-age")
                    && age.trim().parse::<i64>().is_ok_and(|age| age <= 0)
            })
        });
        self.entries.retain(|(o, n, _)| !(o == origin && n == name));
        if !expired {
            self.entries
                .push((origin.to_owned(), name.to_owned(), value.to_owned()));
        }
    }

    /// The `Cookie` header for a request to `origin` that already carries `explicit` (the
    /// caller's own `Cookie` header, e.g. the OCF `JSESSIONID`): the explicit pairs first,
    /// then the jar's, leaving out names the caller set. `None` when there is nothing to send.
    pub fn header(&self, origin: &str, explicit: Option<&str>) -> Option<String> {
        let mut pairs: Vec<String> = explicit
            .into_iter()
            .flat_map(|h| h.split(';'))
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect();
        let named: Vec<String> = pairs
            .iter()
            .map(|p| p.split_once('=').map_or(p.as_str(), |(n, _)| n).to_owned())
            .collect();
        for (o, name, value) in &self.entries {
            if o == origin && !named.contains(name) {
                pairs.push(format!("{name}={value}"));
            }
        }
        (!pairs.is_empty()).then(|| pairs.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::test;

    use super::CookieJar;

    #[test]
    fn a_seeded_session_id_is_replaced_by_the_servers_cookie() {
        // The OCF client's cookie manager: the session id given on the command line is the
        // first JSESSIONID; a Set-Cookie of the same name replaces it for later requests.
        let mut jar = CookieJar::default();
        jar.store("https://a.example", "JSESSIONID=given");
        assert_eq!(
            jar.header("https://a.example", None).as_deref(),
            Some("JSESSIONID=given")
        );
        jar.store("https://a.example", "JSESSIONID=server; Path=/rt; HttpOnly");
        assert_eq!(
            jar.header("https://a.example", None).as_deref(),
            Some("JSESSIONID=server")
        );
        assert_eq!(jar.header("https://b.example", None), None);
    }
}
