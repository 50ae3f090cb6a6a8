//! A GP Amd B agent that keeps no cookies, as SCP81 agents usually do (issue #11), written
//! from GP Amd B's HTTP rules (ramoverhttp.md §1.1, §2.1):
//!
//! - the first POST has no body, `X-Admin-Protocol: globalplatform-remote-admin/1.0` and
//!   `X-Admin-From`;
//! - a `200` carries a definite `AA { 22 C-APDU ... }` script: the C-APDUs run in order and
//!   stop after the first status word other than `9000` or `61xx`; the response
//!   `AB { 80 count, 23 R-APDU ... }` goes to the answer's `X-Admin-Next-URI` with the GP
//!   response Content-Type and `X-Admin-Script-Status: ok`;
//! - a `204`, or an answer without a Next-URI, ends the session.
//!
//! It never sends a `Cookie` header: the session lives in the Next-URI alone.

use std::net::SocketAddr;

use super::{request_with_timeout, split_tlv, tlv, Raw};

/// The GP response script Content-Type (GP Amd B).
pub const GP_RESPONSE_CT: &str =
    "application/vnd.globalplatform.card-content-mgt-response;version=1.0";

/// The agent's `X-Admin-From`.
const AGENT_ID: &str = "//se-id/eid/test-agent;//aa-id/aid/A000000151/000000";

/// One POST of the agent and its answer.
#[derive(Debug, Clone)]
pub struct AgentPost {
    pub url: String,
    pub body: Vec<u8>,
    pub answer: Raw,
}

/// The agent's end of a session, one step at a time.
#[derive(Debug)]
pub struct GpAgent {
    addr: SocketAddr,
    /// Where the next POST goes; `None` once the session ended.
    pub next: Option<String>,
    /// The next POST's body.
    body: Vec<u8>,
    pub posts: Vec<AgentPost>,
    /// The `JSESSIONID` the server set on the first answer (never sent back).
    pub offered_cookie: Option<String>,
}

impl GpAgent {
    pub fn new(addr: SocketAddr, url: &str) -> Self {
        GpAgent {
            addr,
            next: Some(url.to_owned()),
            body: Vec::new(),
            posts: Vec::new(),
            offered_cookie: None,
        }
    }

    /// Posts the next request and runs the answer's script on `card` (a function from a
    /// C-APDU to the R-APDU). Returns the answer's status.
    pub async fn step(&mut self, card: &mut impl FnMut(&[u8]) -> Vec<u8>) -> u16 {
        let url = self.next.take().expect("the session has a next step");
        let sent = std::mem::take(&mut self.body);
        let answer = post(self.addr, &url, &sent).await;
        if self.posts.is_empty() {
            self.offered_cookie = answer.cookie();
        }
        let status = answer.status;
        if status == 200 {
            self.body = run_script(&answer.body, card);
            self.next = answer.header("x-admin-next-uri").map(str::to_owned);
        }
        self.posts.push(AgentPost {
            url,
            body: sent,
            answer,
        });
        status
    }

    /// Steps until the session ends; returns the last status.
    pub async fn run(&mut self, mut card: impl FnMut(&[u8]) -> Vec<u8>) -> u16 {
        for _ in 0..32 {
            let status = self.step(&mut card).await;
            if status != 200 || self.next.is_none() {
                return status;
            }
        }
        panic!("the session did not end in 32 steps")
    }
}

/// One agent POST to `url` with `body` (empty: the first POST's headers only).
pub async fn post(addr: SocketAddr, url: &str, body: &[u8]) -> Raw {
    let mut headers = vec![
        ("X-Admin-Protocol", "globalplatform-remote-admin/1.0"),
        ("X-Admin-From", AGENT_ID),
    ];
    if !body.is_empty() {
        headers.push(("Content-Type", GP_RESPONSE_CT));
        headers.push(("X-Admin-Script-Status", "ok"));
    }
    request_with_timeout(addr, url, &headers, body).await
}

/// Runs a definite `AA` script of `22` C-APDUs and returns the `AB` response.
fn run_script(script: &[u8], card: &mut impl FnMut(&[u8]) -> Vec<u8>) -> Vec<u8> {
    let (tag, mut rest, _) = split_tlv(script).expect("a well-formed script");
    assert_eq!(tag, 0xAA, "a definite command script");
    let mut responses = Vec::new();
    let mut count = 0u8;
    while !rest.is_empty() {
        let (tag, value, next) = split_tlv(rest).expect("a well-formed unit");
        rest = next;
        assert_eq!(tag, 0x22, "only C-APDUs in this script");
        let r = card(value);
        count += 1;
        responses.extend(tlv(0x23, &r));
        let sw = &r[r.len().saturating_sub(2)..];
        if sw != [0x90, 0x00] && sw.first() != Some(&0x61) {
            break;
        }
    }
    let mut body = tlv(0x80, &[count]);
    body.extend(responses);
    tlv(0xAB, &body)
}
