//! GlobalPlatform SERAM messages in the HTTP REST binding's JSON data format
//! (GP SERAM 2.0.0, `spec/gpseram.yaml` and `doc/GPSERAM__Overview.md`).
//!
//! | message | from | schema |
//! |---|---|---|
//! | [`HandshakeCommand`] | Local Agent | `ramHandshakeCommand` |
//! | [`HandshakeResponse`] | Remote Agent | `ramHandshakeResponse` |
//! | [`Order`] | Remote Agent | `remoteManagementOrder` |
//! | [`Report`] | Local Agent | `remoteManagementReport` |
//!
//! The specification contradicts itself; the decoders accept every reading a Remote Agent
//! may follow, the encoders write what the schema prescribes:
//! - Start and Stop are `ramStartCommand` / `ramStopCommand` in the schema's discriminator
//!   mapping but `startCommand` / `stopCommand` in every example: both are read.
//! - The handshake response's required data format field is `chosenDataProtocol` in the
//!   `required` list and `chosenDataFormat` in the properties and the example: both are
//!   read (a Remote Agent may send both; the reference server does).
//! - The handshake command's versions are `supportedVersions` in the schema and
//!   `supportedVersion` in the example: `supportedVersions` is written, both are read.
//! - The default polling delay is 1 s in the binding text and 100 ms in the schema: the
//!   binding text is followed ([`DEFAULT_DELAY_MS`]); `delay` is in milliseconds (schema).
//! - The `apdu` pattern `([0-9A-F]{2})*` is not anchored, so it admits any string (the
//!   examples carry `00A40400OA0001020304050607080900A`): C-APDUs are kept as text here and
//!   checked when they are run. R-APDUs are written as upper-case hex ([`crate::proto::hex::compact`]).

use super::json::{object, write_string, JsonError, Value};

/// The GP SERAM version this crate speaks.
pub const VERSION: &str = "2.0.0";
/// The only transport protocol of the schema.
pub const TRANSPORT_HTTPS: &str = "HTTPS";
/// The only data format of the schema.
pub const DATA_FORMAT_JSON: &str = "application/json";
/// The pause before the next request when an Order gives no `delay` (HTTP REST binding,
/// "HTTP Polling": "the Local Agent SHALL make a pause of 1 second").
pub const DEFAULT_DELAY_MS: u64 = 1_000;

/// Why a SERAM message does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SeramMessageError {
    /// Not JSON.
    #[error("not json")]
    Json(#[source] JsonError),
    /// JSON, but not the message the schema describes.
    #[error("{0}")]
    Schema(&'static str),
}

fn schema(what: &'static str) -> SeramMessageError {
    SeramMessageError::Schema(what)
}

/// A Secure Element (`secureElement`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecureElement {
    /// `seType`: `eSE`, `iSE`, `uicc`, `euicc`, `ieuicc` or `undefined`.
    pub se_type: String,
    /// `seId`.
    pub se_id: String,
    /// `seExtraInfo`: a comma-separated feature list.
    pub se_extra_info: Option<String>,
}

impl SecureElement {
    fn write(&self, out: &mut String) {
        out.push_str(r#"{"seType":"#);
        write_string(out, &self.se_type);
        out.push_str(r#","seId":"#);
        write_string(out, &self.se_id);
        if let Some(extra) = &self.se_extra_info {
            out.push_str(r#","seExtraInfo":"#);
            write_string(out, extra);
        }
        out.push('}');
    }

    fn to_json(&self) -> Value {
        let mut members = vec![
            ("seType".to_owned(), Value::from(self.se_type.as_str())),
            ("seId".to_owned(), Value::from(self.se_id.as_str())),
        ];
        if let Some(extra) = &self.se_extra_info {
            members.push(("seExtraInfo".to_owned(), Value::from(extra.as_str())));
        }
        Value::Object(members)
    }

    fn from_json(v: &Value) -> Result<Self, SeramMessageError> {
        let text = |key| v.get(key).and_then(Value::as_str).map(str::to_owned);
        Ok(SecureElement {
            se_type: text("seType").ok_or(schema("secure element without seType"))?,
            se_id: text("seId").ok_or(schema("secure element without seId"))?,
            se_extra_info: text("seExtraInfo"),
        })
    }
}

/// The Handshake Command (`ramHandshakeCommand`), POSTed to `/handshake`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeCommand {
    /// `secureElements`, by preference.
    pub secure_elements: Vec<SecureElement>,
}

impl HandshakeCommand {
    /// The JSON text, offering HTTPS, `application/json` and version 2.0.0.
    pub fn encode(&self) -> String {
        let mut out = String::from(r#"{"secureElements":["#);
        for (i, se) in self.secure_elements.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            se.write(&mut out);
        }
        // INVARIANT: TRANSPORT_HTTPS, DATA_FORMAT_JSON and VERSION, as the tests check.
        out.push_str(concat!(
            r#"],"supportedTransportProtocols":["HTTPS"],"#,
            r#""supportedDataFormats":["application/json"],"supportedVersions":["2.0.0"]}"#
        ));
        out
    }

    /// Decodes a command, with the offers: `(transports, formats, versions)`, each with
    /// its schema default when absent.
    pub fn decode(body: &[u8]) -> Result<(Self, Offers), SeramMessageError> {
        let v = Value::parse(body).map_err(SeramMessageError::Json)?;
        let ses = v
            .get("secureElements")
            .and_then(Value::as_array)
            .ok_or(schema("handshake without secureElements"))?;
        let secure_elements = ses
            .iter()
            .map(SecureElement::from_json)
            .collect::<Result<_, _>>()?;
        let list = |keys: &[&str], default: &str| -> Result<Vec<String>, SeramMessageError> {
            match keys.iter().find_map(|k| v.get(k)) {
                None => Ok(vec![default.to_owned()]),
                Some(list) => list
                    .as_strings()
                    .ok_or(schema("handshake offer is not a list of strings")),
            }
        };
        let offers = Offers {
            transports: list(&["supportedTransportProtocols"], TRANSPORT_HTTPS)?,
            formats: list(&["supportedDataFormats"], DATA_FORMAT_JSON)?,
            versions: list(&["supportedVersions", "supportedVersion"], VERSION)?,
        };
        Ok((HandshakeCommand { secure_elements }, offers))
    }
}

/// What a Local Agent offered in its handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offers {
    /// Transport protocols.
    pub transports: Vec<String>,
    /// Data formats.
    pub formats: Vec<String>,
    /// Versions.
    pub versions: Vec<String>,
}

/// The Handshake Response (`ramHandshakeResponse`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeResponse {
    /// `chosenTransportProtocol`.
    pub transport: Option<String>,
    /// `chosenDataFormat` or `chosenDataProtocol`.
    pub data_format: Option<String>,
    /// `chosenVersion`.
    pub version: Option<String>,
}

impl HandshakeResponse {
    /// Decodes a response; fields that are not strings are errors, absent ones `None`.
    pub fn decode(body: &[u8]) -> Result<Self, SeramMessageError> {
        let v = Value::parse(body).map_err(SeramMessageError::Json)?;
        if !matches!(v, Value::Object(_)) {
            return Err(schema("handshake response is not an object"));
        }
        let field = |keys: &[&str]| match keys.iter().find_map(|k| v.get(k)) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(schema("handshake choice is not a string")),
        };
        Ok(HandshakeResponse {
            transport: field(&["chosenTransportProtocol"])?,
            data_format: field(&["chosenDataFormat", "chosenDataProtocol"])?,
            version: field(&["chosenVersion"])?,
        })
    }

    /// The JSON text, with the data format under both names (see the module notes).
    pub fn encode(&self) -> String {
        let text = |s: &Option<String>| Value::from(s.as_deref().unwrap_or_default());
        object([
            ("chosenTransportProtocol", text(&self.transport)),
            ("chosenDataProtocol", text(&self.data_format)),
            ("chosenDataFormat", text(&self.data_format)),
            ("chosenVersion", text(&self.version)),
        ])
        .encode()
    }
}

/// A Command of an Order (`ramCommand`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `ramStartCommand` / `startCommand`: the session starts.
    Start,
    /// `seRamCommand`: C-APDUs for the Secure Element, as hex text (`listOfCAPDU`).
    SeRam(Vec<String>),
    /// `notificationCommand`: a UTF-8 text for the Device Application.
    Notification(String),
    /// `ramStopCommand` / `stopCommand`: the session ends, no further Report.
    Stop,
}

impl Command {
    fn from_json(v: &Value) -> Result<Self, SeramMessageError> {
        let kind = v
            .get("ramCommandType")
            .and_then(Value::as_str)
            .ok_or(schema("command without ramCommandType"))?;
        Ok(match kind {
            "ramStartCommand" | "startCommand" => Command::Start,
            "ramStopCommand" | "stopCommand" => Command::Stop,
            "seRamCommand" => {
                let list = v
                    .get("listOfCAPDU")
                    .ok_or(schema("se ram command without listOfCAPDU"))?;
                let apdus = list.as_strings().ok_or(schema("c-apdu is not a string"))?;
                Command::SeRam(apdus)
            }
            "notificationCommand" => Command::Notification(
                v.get("deviceAppNotification")
                    .and_then(Value::as_str)
                    .ok_or(schema("notification without deviceAppNotification"))?
                    .to_owned(),
            ),
            _ => return Err(schema("unknown ramCommandType")),
        })
    }

    /// The JSON object; Start and Stop are written with the schema's names.
    fn to_json(&self) -> Value {
        let kind = |k: &str| ("ramCommandType", Value::from(k));
        match self {
            Command::Start => object([kind("ramStartCommand")]),
            Command::Stop => object([kind("ramStopCommand")]),
            Command::SeRam(apdus) => object([
                kind("seRamCommand"),
                (
                    "listOfCAPDU",
                    Value::Array(apdus.iter().map(|a| Value::from(a.as_str())).collect()),
                ),
            ]),
            Command::Notification(text) => object([
                kind("notificationCommand"),
                ("deviceAppNotification", Value::from(text.as_str())),
            ]),
        }
    }
}

/// An Order (`remoteManagementOrder`): every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Order {
    /// `delay`: milliseconds before the next request; `None` means [`DEFAULT_DELAY_MS`].
    pub delay_ms: Option<u64>,
    /// `chosenSecureElement`.
    pub chosen_secure_element: Option<SecureElement>,
    /// `ramCommands`, run one by one.
    pub commands: Vec<Command>,
}

impl Order {
    /// Decodes an Order. Not an object, a `delay` that is not a non-negative integer, or a
    /// Command the schema does not describe is an error.
    pub fn decode(body: &[u8]) -> Result<Self, SeramMessageError> {
        let v = Value::parse(body).map_err(SeramMessageError::Json)?;
        if !matches!(v, Value::Object(_)) {
            return Err(schema("order is not an object"));
        }
        let delay_ms = match v.get("delay") {
            None => None,
            Some(d) => Some(
                d.as_u64()
                    .ok_or(schema("delay is not a non-negative integer"))?,
            ),
        };
        let chosen_secure_element = match v.get("chosenSecureElement") {
            None => None,
            Some(se) => Some(SecureElement::from_json(se)?),
        };
        let commands = match v.get("ramCommands") {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(Command::from_json)
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(schema("ramCommands is not a list")),
        };
        Ok(Order {
            delay_ms,
            chosen_secure_element,
            commands,
        })
    }

    /// The JSON text; absent fields are left out.
    pub fn encode(&self) -> String {
        let mut members = Vec::new();
        if let Some(d) = self.delay_ms {
            members.push(("delay".to_owned(), Value::from(d)));
        }
        if let Some(se) = &self.chosen_secure_element {
            members.push(("chosenSecureElement".to_owned(), se.to_json()));
        }
        if !self.commands.is_empty() {
            let commands = self.commands.iter().map(Command::to_json).collect();
            members.push(("ramCommands".to_owned(), Value::Array(commands)));
        }
        Value::Object(members).encode()
    }
}

/// `localAgentStatusEnum`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentStatus {
    /// At least one Command was executed.
    Processed,
    /// The first request, or the Order carried no Command.
    Polling,
    /// The Secure Element could not be reached.
    UnavailableSe,
    /// Any other failure (a malformed Order among them).
    UnknownFailure,
    /// Access to the Secure Element was refused.
    UngrantedAccess,
}

impl AgentStatus {
    /// The schema's text.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Processed => "PROCESSED",
            AgentStatus::Polling => "POLLING",
            AgentStatus::UnavailableSe => "UNAVAILABLE_SE",
            AgentStatus::UnknownFailure => "UNKNOWN_FAILURE",
            AgentStatus::UngrantedAccess => "UNGRANTED_ACCESS",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            AgentStatus::Processed,
            AgentStatus::Polling,
            AgentStatus::UnavailableSe,
            AgentStatus::UnknownFailure,
            AgentStatus::UngrantedAccess,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
    }
}

/// A Report (`remoteManagementReport`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// `localAgentStatusEnum`.
    pub status: AgentStatus,
    /// `executedSeRamCommands`: SE RAM Commands run completely.
    pub executed: u64,
    /// `errorMsg`, on an error status.
    pub error: Option<String>,
    /// One `seRamResponse` per SE RAM Command run, in order: its R-APDUs as hex text.
    pub responses: Vec<Vec<String>>,
}

impl Report {
    /// The polling Report: `POLLING`, zero executed, nothing else.
    pub fn polling() -> Self {
        Report {
            status: AgentStatus::Polling,
            executed: 0,
            error: None,
            responses: Vec::new(),
        }
    }

    /// The JSON text; `ramResponses` is left out when empty, `errorMsg` when `None`.
    pub fn encode(&self) -> String {
        let mut out = String::from(r#"{"localAgentStatus":{"localAgentStatusEnum":""#);
        out.push_str(self.status.as_str());
        out.push_str(r#"","executedSeRamCommands":"#);
        out.push_str(&self.executed.to_string());
        if let Some(e) = &self.error {
            out.push_str(r#","errorMsg":"#);
            write_string(&mut out, e);
        }
        out.push('}');
        for (i, list) in self.responses.iter().enumerate() {
            out.push_str(if i == 0 { r#","ramResponses":["# } else { "," });
            out.push_str(r#"{"ramResponseType":"seRamResponse","listOfRAPDU":["#);
            for (j, rapdu) in list.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                write_string(&mut out, rapdu);
            }
            out.push_str("]}");
            if i + 1 == self.responses.len() {
                out.push(']');
            }
        }
        out.push('}');
        out
    }

    /// Decodes a Report (the Remote Agent's side). Responses of another type are skipped.
    pub fn decode(body: &[u8]) -> Result<Self, SeramMessageError> {
        let v = Value::parse(body).map_err(SeramMessageError::Json)?;
        let status = v
            .get("localAgentStatus")
            .ok_or(schema("report without localAgentStatus"))?;
        let status_enum = status
            .get("localAgentStatusEnum")
            .and_then(Value::as_str)
            .and_then(AgentStatus::parse)
            .ok_or(schema("unknown localAgentStatusEnum"))?;
        let executed = match status.get("executedSeRamCommands") {
            None => 0,
            Some(n) => n
                .as_u64()
                .ok_or(schema("executedSeRamCommands is not an integer"))?,
        };
        let error = status
            .get("errorMsg")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let mut responses = Vec::new();
        if let Some(list) = v.get("ramResponses") {
            for r in list
                .as_array()
                .ok_or(schema("ramResponses is not a list"))?
            {
                if r.get("ramResponseType").and_then(Value::as_str) != Some("seRamResponse") {
                    continue;
                }
                let rapdus = r
                    .get("listOfRAPDU")
                    .and_then(Value::as_strings)
                    .ok_or(schema("se ram response without listOfRAPDU"))?;
                responses.push(rapdus);
            }
        }
        Ok(Report {
            status: status_enum,
            executed,
            error,
            responses,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::test;

    // gpseram.yaml, components/examples.
    const SE: &str =
        r#"{"seType":"eSE","seId":"89001012012341234012345678901224","seExtraInfo":"SAM"}"#;

    fn eose() -> SecureElement {
        SecureElement {
            se_type: "eSE".into(),
            se_id: "89001012012341234012345678901224".into(),
            se_extra_info: Some("SAM".into()),
        }
    }

    #[test]
    fn handshake_request_example_decodes() {
        let example = format!(
            r#"{{"secureElements":[{SE}],"supportedTransportProtocols":["HTTPS"],
            "supportedDataFormats":["application/json"],"supportedVersion":["2.0.0"]}}"#
        );
        let (command, offers) = HandshakeCommand::decode(example.as_bytes()).expect("example");
        assert_eq!(command.secure_elements, vec![eose()]);
        assert_eq!(offers.versions, vec!["2.0.0".to_owned()]);
        let encoded = command.encode();
        assert_eq!(
            encoded,
            format!(
                r#"{{"secureElements":[{SE}],"supportedTransportProtocols":["HTTPS"],"supportedDataFormats":["application/json"],"supportedVersions":["2.0.0"]}}"#
            )
        );
        assert_eq!(offers.transports, vec![TRANSPORT_HTTPS.to_owned()]);
        assert_eq!(offers.formats, vec![DATA_FORMAT_JSON.to_owned()]);
        let (_, ours) = HandshakeCommand::decode(encoded.as_bytes()).expect("ours");
        assert_eq!(ours, offers, "the encoded offers are the constants");
        let (_, defaults) = HandshakeCommand::decode(br#"{"secureElements":[]}"#).expect("bare");
        assert_eq!(defaults.transports, vec!["HTTPS".to_owned()]);
        assert_eq!(defaults.formats, vec!["application/json".to_owned()]);
    }

    #[test]
    fn handshake_response_both_names() {
        let example =
            br#"{"chosenTransportProtocol":"HTTPS","chosenDataFormat":"application/json","chosenVersion":"2.0.0"}"#;
        let r = HandshakeResponse::decode(example).expect("example");
        assert_eq!(r.data_format.as_deref(), Some("application/json"));
        let schema_reading = br#"{"chosenTransportProtocol":"HTTPS","chosenDataProtocol":"application/json","chosenVersion":"2.0.0"}"#;
        assert_eq!(HandshakeResponse::decode(schema_reading), Ok(r.clone()));
        assert_eq!(HandshakeResponse::decode(r.encode().as_bytes()), Ok(r));
        assert!(HandshakeResponse::decode(b"[]").is_err());
        assert!(HandshakeResponse::decode(br#"{"chosenVersion":2}"#).is_err());
    }

    #[test]
    fn example_orders_decode() {
        let o = Order::decode(br#"{"delay": 500}"#).expect("withoutCommandOrder");
        assert_eq!(o.delay_ms, Some(500));
        assert!(o.commands.is_empty());
        let o = Order::decode(br#"{"ramCommands":[{"ramCommandType":"startCommand"}]}"#)
            .expect("startCommandOrder");
        assert_eq!(o.commands, vec![Command::Start]);
        let all = format!(
            r#"{{"delay":0,"chosenSecureElement":{SE},"ramCommands":[
            {{"ramCommandType":"startCommand"}},
            {{"ramCommandType":"seRamCommand","listOfCAPDU":["00A40400OA0001020304050607080900A"]}},
            {{"ramCommandType":"notificationCommand","deviceAppNotification":"step1/action2/OK"}},
            {{"ramCommandType":"stopCommand"}}]}}"#
        );
        let o = Order::decode(all.as_bytes()).expect("allCommandsOrder");
        assert_eq!(o.delay_ms, Some(0));
        assert_eq!(o.chosen_secure_element, Some(eose()));
        assert_eq!(
            o.commands,
            vec![
                Command::Start,
                Command::SeRam(vec!["00A40400OA0001020304050607080900A".into()]),
                Command::Notification("step1/action2/OK".into()),
                Command::Stop
            ]
        );
        // The schema's names decode the same, and encoding uses them.
        let encoded = o.encode();
        assert!(encoded.contains(r#""ramCommandType":"ramStartCommand""#));
        assert!(encoded.contains(r#""ramCommandType":"ramStopCommand""#));
        assert_eq!(Order::decode(encoded.as_bytes()), Ok(o));
    }

    #[test]
    fn malformed_orders() {
        for (body, error) in [
            (&b"[]"[..], "order is not an object"),
            (br#"{"delay":-1}"#, "delay is not a non-negative integer"),
            (br#"{"delay":1.5}"#, "delay is not a non-negative integer"),
            (br#"{"ramCommands":{}}"#, "ramCommands is not a list"),
            (br#"{"ramCommands":[{}]}"#, "command without ramCommandType"),
            (
                br#"{"ramCommands":[{"ramCommandType":"redirectCommand"}]}"#,
                "unknown ramCommandType",
            ),
            (
                br#"{"ramCommands":[{"ramCommandType":"seRamCommand"}]}"#,
                "se ram command without listOfCAPDU",
            ),
            (
                br#"{"ramCommands":[{"ramCommandType":"seRamCommand","listOfCAPDU":[1]}]}"#,
                "c-apdu is not a string",
            ),
            (
                br#"{"ramCommands":[{"ramCommandType":"notificationCommand"}]}"#,
                "notification without deviceAppNotification",
            ),
            (
                br#"{"chosenSecureElement":{"seType":"eSE"}}"#,
                "secure element without seId",
            ),
        ] {
            assert_eq!(
                Order::decode(body).map_err(|e| e.to_string()),
                Err(error.to_owned()),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert!(matches!(
            Order::decode(b"{"),
            Err(SeramMessageError::Json(_))
        ));
    }

    #[test]
    fn reports_match_the_examples() {
        // remoteManagementPolling.
        assert_eq!(
            Report::polling().encode(),
            r#"{"localAgentStatus":{"localAgentStatusEnum":"POLLING","executedSeRamCommands":0}}"#
        );
        // apdusRemoteManagement.
        let r = Report {
            status: AgentStatus::Processed,
            executed: 2,
            error: None,
            responses: vec![vec!["9000".into(), "9000".into()], vec!["9000".into()]],
        };
        let text = r.encode();
        assert_eq!(
            text,
            r#"{"localAgentStatus":{"localAgentStatusEnum":"PROCESSED","executedSeRamCommands":2},"ramResponses":[{"ramResponseType":"seRamResponse","listOfRAPDU":["9000","9000"]},{"ramResponseType":"seRamResponse","listOfRAPDU":["9000"]}]}"#
        );
        assert_eq!(Report::decode(text.as_bytes()), Ok(r));
    }
}
