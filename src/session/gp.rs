//! The GlobalPlatform Amd B dialect of a session (ramoverhttp.md §1.1, §2.1): its POSTs,
//! how it reads the server's answers and how it runs a command script.

use super::http::{
    HttpRequest, HttpResponse, ScriptStatus, ADMIN_FROM, ADMIN_PROTOCOL, CONTENT_TYPE, NEXT_URI,
    SCRIPT_STATUS,
};
use super::uri::resolve_uri;
use super::{
    Action, AfterHttp, CardCommand, EndStatus, Expect, Run, Session, SessionError, State,
    DEFAULT_AGENT_ID, GP_ADMIN_PROTOCOL,
};
use crate::proto::ram::{gp, GP_RESPONSE_CONTENT_TYPE};

/// A GP command script being run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct GpRun {
    pub(super) items: Vec<gp::CommandItem>,
    /// The index of the next item to look at.
    pub(super) next: usize,
    /// The response built so far; its count is filled in at the end.
    pub(super) reply: gp::ResponseScript,
    /// C-APDUs run from this script.
    pub(super) count: u32,
    /// Set by a status word that ends the script.
    pub(super) stopped: bool,
    /// Set by a card I/O error.
    pub(super) card_error: Option<String>,
    /// Where the response goes; `None` when the server gave no Next-URI.
    pub(super) next_uri: Option<String>,
}

impl Session {
    pub(super) fn agent_id(&self) -> &str {
        self.config.agent_id.as_deref().unwrap_or(DEFAULT_AGENT_ID)
    }

    pub(super) fn gp_empty_post(&self, url: String) -> HttpRequest {
        HttpRequest::post(
            url,
            &[
                (ADMIN_PROTOCOL, GP_ADMIN_PROTOCOL),
                (ADMIN_FROM, self.agent_id()),
            ],
            Vec::new(),
        )
    }

    pub(super) fn gp_report(
        &self,
        url: String,
        status: ScriptStatus,
        body: Vec<u8>,
    ) -> HttpRequest {
        HttpRequest::post(
            url,
            &[
                (ADMIN_PROTOCOL, GP_ADMIN_PROTOCOL),
                (ADMIN_FROM, self.agent_id()),
                (CONTENT_TYPE, GP_RESPONSE_CONTENT_TYPE),
                (SCRIPT_STATUS, status.as_str()),
            ],
            body,
        )
    }

    pub(super) fn gp_answer(&self, response: HttpResponse) -> State {
        if !matches!(response.status, 200 | 204) {
            return State::Ending(Action::Failed(SessionError::Server {
                status: response.status,
            }));
        }
        let next_uri = match response.header(NEXT_URI).map(|r| resolve_uri(&self.url, r)) {
            None => None,
            Some(Ok(uri)) => Some(uri),
            Some(Err(error)) => {
                return State::Ending(Action::Failed(SessionError::BadNextUri(error)))
            }
        };
        if response.status == 204 || response.body.is_empty() {
            return match next_uri {
                Some(uri) => State::Send(self.gp_empty_post(uri), AfterHttp::Continue),
                None => self.done(),
            };
        }
        match gp::CommandScript::decode(&response.body) {
            Ok(script) => State::Running(Run::Gp(GpRun {
                items: script.items,
                next: 0,
                reply: gp::ResponseScript {
                    form: script.form,
                    count: None,
                    items: Vec::new(),
                },
                count: 0,
                stopped: false,
                card_error: None,
                next_uri,
            })),
            Err(error) => {
                let failure = SessionError::BadScript(error.clone());
                match next_uri {
                    Some(uri) => {
                        let reply = gp::ResponseScript {
                            form: gp::Form::Definite,
                            count: Some(0),
                            items: vec![gp::ResponseItem::BadFormat(gp::BadFormat::for_error(
                                &error,
                            ))],
                        };
                        let request =
                            self.gp_report(uri, ScriptStatus::ScriptFormatError, reply.encode());
                        State::Send(request, AfterHttp::Fail(failure))
                    }
                    None => State::Ending(Action::Failed(failure)),
                }
            }
        }
    }

    pub(super) fn step_gp(&mut self, mut run: GpRun) -> Action {
        if run.card_error.is_none() && !run.stopped {
            while let Some(item) = run.items.get(run.next) {
                run.next += 1;
                // Only C-APDUs can run on a relayed card; the UICC actions are skipped.
                if let gp::CommandItem::Apdu(apdu) = item {
                    let command = CardCommand::Apdu(apdu.clone());
                    self.state = State::AwaitCard(Run::Gp(run), Expect::Response);
                    return Action::Card(command);
                }
            }
        }
        if run.reply.form == gp::Form::Definite {
            run.reply.count = Some(run.count);
        }
        let (status, after) = match run.card_error {
            Some(message) => (
                ScriptStatus::UnavailableSe,
                AfterHttp::Fail(SessionError::Card { message }),
            ),
            None => (ScriptStatus::Ok, AfterHttp::Continue),
        };
        match (run.next_uri, after) {
            (Some(uri), after) => {
                let request = self.gp_report(uri, status, run.reply.encode());
                self.send(request, after)
            }
            (None, AfterHttp::Fail(error)) => self.finish(Action::Failed(error)),
            (None, AfterHttp::Continue) => {
                self.finish(Action::Done(self.outcome(EndStatus::Completed)))
            }
        }
    }
}

/// Whether a GP script goes on after this response: SW `9000` or `61xx` (ramoverhttp.md §2.1).
pub(super) fn gp_continues(rapdu: &[u8]) -> bool {
    matches!(rapdu, [.., 0x90, 0x00] | [.., 0x61, _])
}
