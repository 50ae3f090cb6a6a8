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
    /// Origins whose jar the caller's own `Cookie` header has seeded.
    seeded: Vec<String>,
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

    /// The `Cookie` header for a request to `origin` whose caller gave `explicit` (its own
    /// `Cookie` header, e.g. the OCF `JSESSIONID`). The first explicit header for an origin
    /// seeds the jar with its pairs, without overriding a cookie the server already set;
    /// after that the jar alone decides, so a server's `Set-Cookie` replaces the seed. `None`
    /// when there is nothing to send.
    pub fn header(&mut self, origin: &str, explicit: Option<&str>) -> Option<String> {
        if let Some(explicit) = explicit {
            if !self.seeded.iter().any(|o| o == origin) {
                self.seeded.push(origin.to_owned());
                for pair in explicit.split(';') {
                    let Some((name, value)) = pair.split_once('=') else {
                        continue;
                    };
                    let (name, value) = (name.trim(), value.trim());
                    let known = self
                        .entries
                        .iter()
                        .any(|(o, n, _)| o == origin && n == name);
                    if !name.is_empty() && !known {
                        self.entries
                            .push((origin.to_owned(), name.to_owned(), value.to_owned()));
                    }
                }
            }
        }
        let pairs: Vec<String> = self
            .entries
            .iter()
            .filter(|(o, _, _)| o == origin)
            .map(|(_, name, value)| format!("{name}={value}"))
            .collect();
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
        // first JSESSIONID; a Set-Cookie of the same name replaces it for later requests,
        // while the caller keeps sending its own header.
        let mut jar = CookieJar::default();
        let given = Some("JSESSIONID=given");
        let origin = "https://a.example";
        assert_eq!(
            jar.header(origin, given).as_deref(),
            Some("JSESSIONID=given")
        );
        jar.store(origin, "JSESSIONID=server; Path=/rt; HttpOnly");
        assert_eq!(
            jar.header(origin, given).as_deref(),
            Some("JSESSIONID=server")
        );
        assert_eq!(jar.header("https://b.example", None), None);
    }
}
