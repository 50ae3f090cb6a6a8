//! The HTTP side of a session: the requests it asks for, the responses it is fed, and the
//! RAMOverHTTP header names and values (ramoverhttp.md §1).

pub(super) const NEXT_URI: &str = "X-Admin-Next-URI";
pub(super) const CONTENT_TYPE: &str = "Content-Type";
pub(super) const ADMIN_PROTOCOL: &str = "X-Admin-Protocol";
pub(super) const ADMIN_FROM: &str = "X-Admin-From";
pub(super) const SCRIPT_STATUS: &str = "X-Admin-Script-Status";
/// The GP Amd B header naming the application a script addresses.
pub const TARGETED_APPLICATION: &str = "X-Admin-Targeted-Application";
/// The GP Amd B header of a POST repeated after a network failure.
pub const RESUME: &str = "X-Admin-Resume";

/// An HTTP request for the driver to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// Always `"POST"`.
    pub method: &'static str,
    /// The URL, possibly relative to the page.
    pub url: String,
    /// Request headers in order.
    pub headers: Vec<(String, String)>,
    /// The body; empty for the first GP POST.
    pub body: Vec<u8>,
}

impl HttpRequest {
    pub(super) fn post(url: String, headers: &[(&str, &str)], body: Vec<u8>) -> Self {
        HttpRequest {
            method: "POST",
            url,
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            body,
        }
    }

    /// The first header named `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

/// An HTTP response as the driver received it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Response headers; names are compared case-insensitively.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header named `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// `X-Admin-Script-Status` values (GP Amd B, and GP SE remote application management).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptStatus {
    /// `ok`: the script was processed.
    Ok,
    /// `unknown-application`.
    UnknownApplication,
    /// `not-a-security-domain`.
    NotASecurityDomain,
    /// `security-error`.
    SecurityError,
    /// `script-format-error`: the script did not decode.
    ScriptFormatError,
    /// `unavailable-se`: the card could not be reached.
    UnavailableSe,
}

impl ScriptStatus {
    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            ScriptStatus::Ok => "ok",
            ScriptStatus::UnknownApplication => "unknown-application",
            ScriptStatus::NotASecurityDomain => "not-a-security-domain",
            ScriptStatus::SecurityError => "security-error",
            ScriptStatus::ScriptFormatError => "script-format-error",
            ScriptStatus::UnavailableSe => "unavailable-se",
        }
    }
}
