//! The OpenSCDP dialect of a session (ramoverhttp.md §1.2, §2.2): its POSTs, how it reads
//! the server's answers and how it runs a command script.

use super::http::{HttpRequest, HttpResponse, CONTENT_TYPE};
use super::{
    Action, AfterHttp, CardCommand, EndStatus, Expect, Notification, Run, Session, SessionError,
    State,
};
use crate::proto::ram::{openscdp, OPENSCDP_RESPONSE_CONTENT_TYPE};

/// An OpenSCDP command script being run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct OpenScdpRun {
    pub(super) commands: Vec<openscdp::Command>,
    /// The index of the next command to run.
    pub(super) next: usize,
    /// The response built so far.
    pub(super) reply: openscdp::ResponseScript,
    /// Set by a card I/O error: the script stops and the reply carries this text.
    pub(super) card_error: Option<String>,
}

impl Session {
    pub(super) fn openscdp_post(&self, body: Vec<u8>) -> HttpRequest {
        HttpRequest::post(
            self.config.url.clone(),
            &[(CONTENT_TYPE, OPENSCDP_RESPONSE_CONTENT_TYPE)],
            body,
        )
    }

    pub(super) fn openscdp_answer(&self, response: HttpResponse) -> State {
        match response.status {
            204 => self.done(),
            200 => match openscdp::CommandScript::decode(&response.body) {
                Ok(script) => State::Running(Run::OpenScdp(OpenScdpRun {
                    commands: script.commands,
                    next: 0,
                    reply: openscdp::ResponseScript::default(),
                    card_error: None,
                })),
                Err(error) => State::Ending(Action::Failed(SessionError::BadScript(error))),
            },
            status => State::Ending(Action::Failed(SessionError::Server { status })),
        }
    }

    pub(super) fn step_openscdp(&mut self, mut run: OpenScdpRun) -> Action {
        if let Some(message) = run.card_error.take() {
            run.reply.items.push(openscdp::ResponseItem::Close {
                message: message.clone(),
            });
            let request = self.openscdp_post(run.reply.encode());
            return self.send(request, AfterHttp::Fail(SessionError::Card { message }));
        }
        while let Some(command) = run.commands.get(run.next) {
            run.next += 1;
            let (card, expect) = match command {
                openscdp::Command::Apdu(apdu) => {
                    (CardCommand::Apdu(apdu.clone()), Expect::Response)
                }
                openscdp::Command::Reset => (CardCommand::Reset, Expect::Atr),
                openscdp::Command::Close { message } => {
                    self.close_message = Some(message.clone());
                    continue;
                }
                openscdp::Command::Notify {
                    id,
                    message,
                    time_to_completion,
                } => {
                    let notification = Notification {
                        id: *id,
                        message: message.clone(),
                        time_to_completion: *time_to_completion,
                    };
                    self.last_notification = Some((notification.id, notification.message.clone()));
                    self.state = if notification.id < 0 {
                        State::Ending(Action::Done(self.outcome(EndStatus::EndedByServer {
                            id: notification.id,
                            message: notification.message.clone(),
                        })))
                    } else {
                        State::Running(Run::OpenScdp(run))
                    };
                    return Action::Notify(notification);
                }
            };
            self.state = State::AwaitCard(Run::OpenScdp(run), expect);
            return Action::Card(card);
        }
        let request = self.openscdp_post(run.reply.encode());
        self.send(request, AfterHttp::Continue)
    }
}
