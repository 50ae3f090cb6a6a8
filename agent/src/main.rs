//! `card-relay`: card updates from the command line on any reader the operating system
//! knows (PC/SC), or on the simulated reader. The OCF client's command line: the same
//! options, the same trace, the same outcome lines and exit statuses (0 done, 1 failed,
//! 2 usage) as the Node.js command line it replaces. See `card-relay --help`.
#![forbid(unsafe_code)]

mod approval;
mod args;
mod daemon;
mod http;
mod pcsc_api;
mod pcsc_channel;
mod pin;
mod png;
mod terminal;
#[cfg(test)]
mod tests;
mod usb;

use std::io::Write;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use card_relay::channel::CardChannel;
use card_relay::driver::sync::{race, Abort, Either};
use card_relay::driver::update::{
    card_update, HttpClient, HttpError, UpdateError, UpdateObserver, UpdateOptions, UpdateResult,
};
use card_relay::driver::usb::{Clock, LocalBoxFuture};
use card_relay::driver::{DriverError, ErrorCode};
use card_relay::pin::PinCheck;
use card_relay::proto::hex;
use card_relay::proto::part10;
use card_relay::reader::PinVerify;
use card_relay::session::{Dialect, EndStatus, HttpRequest, HttpResponse, Notification};

use args::Options;
use http::{check_server_url, AgentHttp};
use pcsc_api::{Pcsc, PcscError, ReaderInfo, SystemPcsc};
use pcsc_channel::PcscChannel;

/// A failure the command line explains: `<what> failed (<code>): <message>`, the hint on the
/// next line, exit status 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    code: String,
    message: String,
    hint: Option<String>,
    /// The HTTP status of a `server-error`.
    status: Option<u16>,
}

impl CliError {
    fn new(code: &str, message: impl Into<String>) -> Self {
        CliError {
            code: code.to_owned(),
            message: message.into(),
            hint: None,
            status: None,
        }
    }

    fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    fn coded(code: ErrorCode, message: impl Into<String>) -> Self {
        CliError::new(code.as_str(), message).with_hint(route_hint(code))
    }
}

/// The hint for a code, where the PC/SC route needs other advice than the browser's.
fn route_hint(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::DeviceBusy => {
            "Another program uses the card exclusively: close it, then try again."
        }
        ErrorCode::Disconnected => {
            "Check that the reader is plugged in and that the smart card service runs \
             (pcscd on Linux), then try again."
        }
        ErrorCode::NetworkError => {
            "The server could not be reached: check the URL, the network and the server's \
             certificate."
        }
        other => other.hint(),
    }
}

impl From<DriverError> for CliError {
    fn from(e: DriverError) -> Self {
        match e {
            DriverError::Channel { code, message } => CliError::coded(code, message),
            // A Web Smart Card row's own hint (`reset-card` on the PC/SC route too).
            other => {
                CliError::new(other.code().as_str(), other.to_string()).with_hint(other.hint())
            }
        }
    }
}

impl From<UpdateError> for CliError {
    fn from(e: UpdateError) -> Self {
        match e {
            UpdateError::Driver(d) => d.into(),
            other => CliError {
                status: other.http_status(),
                ..CliError::coded(other.code(), other.to_string())
            },
        }
    }
}

/// Prints by verbosity: level 0 always, 1 normally, 2 with `-v`; hands the session's
/// events to `events` too (the daemon's page API).
#[derive(Clone)]
struct Out {
    verbosity: u8,
    events: Option<Rc<dyn UpdateObserver>>,
}

impl Out {
    fn line(&self, level: u8, line: &str) {
        if level <= self.verbosity {
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "{line}");
        }
    }
}

impl UpdateObserver for Out {
    fn notification(&self, n: &Notification) {
        self.line(1, &format!("Notification {}: {}", n.id, n.message));
        if let Some(events) = &self.events {
            events.notification(n);
        }
    }
    fn trace(&self, line: &str) {
        self.line(1, line);
        if let Some(events) = &self.events {
            events.trace(line);
        }
    }
}

/// Time from tokio's clock.
struct TokioClock(Instant);

impl Clock for TokioClock {
    fn now(&self) -> u64 {
        u64::try_from(self.0.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
    fn sleep(&self, ms: u64) -> LocalBoxFuture<()> {
        Box::pin(tokio::time::sleep(Duration::from_millis(ms)))
    }
}

/// The session's HTTP client, ending the card's PC/SC transaction before each POST: one
/// transaction holds exactly one server template.
struct TemplateHttp {
    http: AgentHttp,
    before_post: Box<dyn Fn()>,
}

impl HttpClient for TemplateHttp {
    fn post(
        &self,
        request: HttpRequest,
        timeout_ms: u64,
    ) -> LocalBoxFuture<Result<HttpResponse, HttpError>> {
        (self.before_post)();
        self.http.post(request, timeout_ms)
    }
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let options = match args::parse(&argv) {
        Ok(o) => o,
        Err(args::UsageError(message)) => {
            eprintln!("card-relay: {message}\n{}", args::USAGE);
            return ExitCode::from(2);
        }
    };
    if options.help {
        println!("{}", args::USAGE);
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("card-relay: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let local = tokio::task::LocalSet::new();
    let status = local.block_on(&runtime, run(options));
    let _ = std::io::stdout().flush();
    // A PC/SC call still blocking on its thread must not hold the exit.
    std::process::exit(i32::from(status));
}

async fn run(options: Options) -> u8 {
    let out = Out {
        verbosity: options.verbosity,
        events: None,
    };
    let abort = Rc::new(Abort::new());
    let on_signal = Rc::clone(&abort);
    tokio::task::spawn_local(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_signal.abort();
        }
    });
    let (what, result) = if options.daemon {
        ("Daemon", daemon::run(&options, &out, &abort).await)
    } else if options.list {
        ("Listing", list(&options, &out).await)
    } else {
        let result = update(&options, &out, &abort).await;
        ("Update", result.and_then(|r| outcome(&r, &out)))
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{what} failed ({}): {}", e.code, e.message);
            if let Some(hint) = e.hint {
                eprintln!("{hint}");
            }
            1
        }
    }
}

fn system_pcsc() -> Result<Arc<dyn Pcsc>, CliError> {
    match SystemPcsc::establish() {
        Ok(p) => Ok(Arc::new(p)),
        Err(e) => Err(pcsc_error(&e)),
    }
}

fn pcsc_error(e: &PcscError) -> CliError {
    let (code, message) = pcsc_channel::pcsc_code(e);
    CliError::coded(code, message)
}

/// Makes a blocking PC/SC call on a thread of the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, PcscError> + Send + 'static,
) -> Result<T, CliError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(|e| pcsc_error(&e)),
        Err(e) => Err(CliError::new(
            ErrorCode::Protocol.as_str(),
            format!("pc/sc call failed: {e}"),
        )),
    }
}

async fn list(options: &Options, out: &Out) -> Result<(), CliError> {
    if let Some(profile) = &options.simulator {
        out.line(0, &format!("0: Simulated reader ({profile}) (simulator)"));
        return Ok(());
    }
    if options.usb {
        let readers = usb::readers().await?;
        if readers.is_empty() {
            out.line(0, "No USB smart card reader found.");
        }
        for (i, r) in readers.iter().enumerate() {
            out.line(0, &format!("{i}: {} (USB)", r.name));
        }
        return Ok(());
    }
    let pcsc = system_pcsc()?;
    let readers = blocking(move || pcsc.readers()).await?;
    if readers.is_empty() {
        out.line(0, "No smart card reader found.");
    }
    for (i, r) in readers.iter().enumerate() {
        let state = match (r.card_present, r.exclusive) {
            (true, true) => "card in exclusive use",
            (true, false) => "card present",
            (false, _) => "no card",
        };
        out.line(0, &format!("{i}: {} (PC/SC, {state})", r.name));
    }
    Ok(())
}

/// The reader named (exactly, else by a case-insensitive part), or the first.
fn choose<'a, T>(
    readers: &'a [T],
    name: Option<&str>,
    name_of: impl Fn(&T) -> &str,
) -> Option<&'a T> {
    let Some(name) = name else {
        return readers.first();
    };
    let lower = name.to_lowercase();
    readers.iter().find(|r| name_of(r) == name).or_else(|| {
        readers
            .iter()
            .find(|r| name_of(r).to_lowercase().contains(&lower))
    })
}

/// How often the readers are looked at while waiting for a reader or a card.
const WAIT_POLL: Duration = Duration::from_millis(250);

/// Connects to the card in the chosen reader, waiting (until `abort`) for the reader to be
/// plugged in and for a card, and saying so once each.
async fn open_pcsc(
    pcsc: Arc<dyn Pcsc>,
    reader: Option<&str>,
    say: &dyn Fn(&str),
    abort: &Abort,
) -> Result<PcscChannel, CliError> {
    let (mut asked_reader, mut asked_card) = (false, false);
    loop {
        let source = Arc::clone(&pcsc);
        let readers = blocking(move || source.readers()).await?;
        match choose(&readers, reader, |r: &ReaderInfo| &r.name) {
            None if !asked_reader => {
                asked_reader = true;
                say(&match reader {
                    None => "Connect a smart card reader…".to_owned(),
                    Some(n) => format!("Connect the reader \"{n}\"…"),
                });
            }
            Some(r) if !r.card_present && !asked_card => {
                asked_card = true;
                say(&format!("Insert a card into {}…", r.name));
            }
            Some(r) if r.card_present => {
                match PcscChannel::open(Arc::clone(&pcsc), &r.name).await {
                    Ok(channel) => return Ok(channel),
                    // Removed again before the connection: keep waiting.
                    Err(e) if e.code() == ErrorCode::CardAbsent => {}
                    Err(e) => return Err(e.into()),
                }
            }
            _ => {}
        }
        let mut pause = Box::pin(tokio::time::sleep(WAIT_POLL));
        let mut stop = abort.wait();
        if let Either::Right(()) = race(&mut pause, &mut stop).await {
            return Err(CliError::new(ErrorCode::Aborted.as_str(), "cancelled"));
        }
    }
}

/// The control code of `FEATURE_VERIFY_PIN_DIRECT`, when the reader has a PIN pad
/// (PC/SC part 10 §2.2: `GET_FEATURE_REQUEST` through `SCardControl`).
async fn pin_pad_code(channel: &PcscChannel) -> Option<u32> {
    let code = u32::try_from(pcsc::ctl_code(part10::GET_FEATURE_REQUEST.into())).ok()?;
    let tlv = channel.control(code, Vec::new(), None).await.ok()?;
    part10::feature(&tlv, part10::FEATURE_VERIFY_PIN_DIRECT)
}

/// `FEATURE_VERIFY_PIN_DIRECT` with the same PIN parameters as the CCID route: the reader
/// collects the PIN and answers the card's response, or its own `64 00` / `64 01`.
async fn verify_on_pcsc_pad(
    channel: &PcscChannel,
    code: u32,
    pin: &PinVerify,
    abort: &Abort,
) -> Result<Vec<u8>, DriverError> {
    let ccid = pin.encode([0; 3]);
    let structure =
        part10::pin_verify_structure(ccid.get(1..).unwrap_or_default()).map_err(|e| {
            DriverError::Channel {
                code: ErrorCode::InvalidArgument,
                message: e.to_string(),
            }
        })?;
    let response = channel.control(code, structure, Some(abort)).await?;
    let reader_status = |code, message: &str| {
        Err(DriverError::Channel {
            code,
            message: message.to_owned(),
        })
    };
    match response.as_slice() {
        [0x64, 0x00] => reader_status(ErrorCode::Timeout, "no pin entered on the reader in time"),
        [0x64, 0x01] => reader_status(ErrorCode::Aborted, "pin entry cancelled on the reader"),
        _ => Ok(response),
    }
}

async fn update(options: &Options, out: &Out, abort: &Abort) -> Result<UpdateResult, CliError> {
    let url = options.url.clone().unwrap_or_default();
    check_server_url(&url).map_err(|(code, m)| CliError::coded(code, m))?;
    let http = AgentHttp::new();
    #[cfg(feature = "simulator")]
    if let Some(profile) = &options.simulator {
        let driver = open_simulator(profile, &options.card).await?;
        return ccid_update(driver, http, options, out, abort).await;
    }
    if options.usb {
        let readers = usb::readers().await?;
        let Some(reader) = choose(&readers, options.reader.as_deref(), |r| &r.name) else {
            return Err(CliError::new(
                ErrorCode::Disconnected.as_str(),
                "no usb smart card reader found",
            )
            .with_hint(route_hint(ErrorCode::Disconnected)));
        };
        let clock: Rc<dyn Clock> = Rc::new(TokioClock(Instant::now()));
        let transport = usb::NusbTransport::new(reader.info.clone());
        let driver = card_relay::driver::CcidDriver::open(transport, clock)
            .await
            .map_err(usb::cli_error)?;
        return ccid_update(driver, http, options, out, abort).await;
    }
    #[cfg(not(feature = "simulator"))]
    if options.simulator.is_some() {
        return Err(CliError::new(
            ErrorCode::InvalidArgument.as_str(),
            "this build has no simulator",
        ));
    }
    let pcsc = system_pcsc()?;
    let say = |line: &str| out.line(0, line);
    let channel = Rc::new(open_pcsc(pcsc, options.reader.as_deref(), &say, abort).await?);
    let pad_code = pin_pad_code(&channel).await;
    out.line(
        2,
        &format!(
            "Reader: {} (PC/SC{})",
            channel.reader_name(),
            if pad_code.is_some() { ", PIN pad" } else { "" }
        ),
    );
    let pad_channel = Rc::clone(&channel);
    let verify_on_pad = async move |pin: PinVerify| {
        let code = pad_code.unwrap_or_default();
        verify_on_pcsc_pad(&pad_channel, code, &pin, abort).await
    };
    let ends = Rc::clone(&channel);
    let http = TemplateHttp {
        http,
        before_post: Box::new(move || ends.end_template()),
    };
    let result = session(
        channel.as_ref(),
        pad_code.is_some(),
        verify_on_pad,
        &http,
        options,
        out,
        abort,
    )
    .await;
    channel.close(options.reset).await;
    result
}

/// One card update through the project's CCID driver (the simulated reader, `--usb`).
async fn ccid_update<U: card_relay::driver::usb::UsbTransport + 'static>(
    driver: card_relay::driver::CcidDriver<U>,
    http: AgentHttp,
    options: &Options,
    out: &Out,
    abort: &Abort,
) -> Result<UpdateResult, CliError> {
    out.line(
        2,
        &format!(
            "Reader: {} ({} level{})",
            driver.reader_name(),
            driver.exchange_level().name(),
            if driver.description().descriptor().pin_verify() {
                ", PIN pad"
            } else {
                ""
            }
        ),
    );
    let pad = driver.description().descriptor().pin_verify();
    let verify_on_pad = async |pin: PinVerify| driver.verify_pin_on_pad(0, &pin, Some(abort)).await;
    let http = TemplateHttp {
        http,
        before_post: Box::new(|| {}),
    };
    let result = session(&driver, pad, verify_on_pad, &http, options, out, abort).await;
    if options.reset && result.is_ok() {
        let _ = driver.power_off(0).await;
    }
    driver.close().await;
    result
}

#[cfg(feature = "simulator")]
async fn open_simulator(
    profile: &str,
    card: &str,
) -> Result<card_relay::driver::CcidDriver<card_relay::sim::transport::SimTransport>, CliError> {
    use card_relay::sim::{profiles, CardConfig, SimConfig, SimulatedReader};
    let invalid = |e: &dyn std::fmt::Display| {
        CliError::new(ErrorCode::InvalidArgument.as_str(), e.to_string())
    };
    let profile = profiles::load(profile).map_err(|e| invalid(&e))?;
    let card = if card == "pin" {
        CardConfig::pin()
    } else {
        CardConfig::seed()
    };
    let config = SimConfig {
        profile,
        card: Some(card),
        ..SimConfig::default()
    };
    let sim = SimulatedReader::new(config).map_err(|e| invalid(&e))?;
    let transport = card_relay::sim::transport::SimTransport::new(sim);
    let clock: Rc<dyn Clock> = Rc::new(TokioClock(Instant::now()));
    card_relay::driver::CcidDriver::open(transport, clock)
        .await
        .map_err(CliError::from)
}

/// One card update over `channel`, as the OCF client ran it: the ATR with `-v`, the local
/// PIN check with `-p`, the session with its trace, the outcome.
async fn session<C, F>(
    channel: &C,
    pin_pad: bool,
    verify_on_pad: F,
    http: &dyn HttpClient,
    options: &Options,
    out: &Out,
    abort: &Abort,
) -> Result<UpdateResult, CliError>
where
    C: CardChannel + ?Sized,
    F: AsyncFn(PinVerify) -> Result<Vec<u8>, DriverError>,
{
    let url = options.url.clone().unwrap_or_default();
    // The PIN check talks to the card before the session does.
    if out.verbosity >= 2 || options.pin.is_some() {
        let atr = channel.power_on(0, Some(abort)).await?;
        out.line(2, &format!("ATR: {}", hex::spaced(&atr)));
    }
    out.line(1, &format!("Connecting to {url}"));
    if let Some(given) = &options.pin {
        let check = PinCheck {
            select: options.pin_select.clone(),
            pad: pin_pad.then(PinVerify::default),
            ..PinCheck::new(options.pin_reference)
        };
        let mut terminal = pin::Terminal {
            given: given.clone(),
            ask: Box::new(|tries: Option<u8>| {
                let tries = tries.map_or(String::new(), |t| format!(" ({t} tries left)"));
                terminal::ask_secret(&format!("PIN{tries}: "))
            }),
            on_pad: Box::new(|| out.line(0, "Enter your PIN on the reader's keypad.")),
        };
        let with_pad = pin::WithPad {
            channel,
            pad: verify_on_pad,
        };
        pin::verify(&with_pad, &check, &mut terminal, Some(abort)).await?;
    }
    let mut update_options = match (options.dialect.as_str(), &options.session_id) {
        ("seram", Some(id)) => card_relay::driver::seram::options(url, id.clone()),
        (dialect, id) => {
            let mut o = UpdateOptions::new(url);
            o.dialect = if dialect == "gp" {
                Dialect::GlobalPlatform
            } else {
                Dialect::OpenScdp
            };
            // Sent as `Cookie: JSESSIONID=<id>`: it seeds the session's cookie jar.
            o.session_id = id.clone();
            o
        }
    };
    update_options.show_secrets = options.show_secrets;
    let clock = TokioClock(Instant::now());
    Ok(card_update(channel, http, &clock, &update_options, out, Some(abort)).await?)
}

/// The command line's outcome of an update: a session the server ended is a failure.
fn outcome(result: &UpdateResult, out: &Out) -> Result<(), CliError> {
    if let EndStatus::EndedByServer { message, .. } = &result.status {
        let message = result
            .last_notification
            .as_ref()
            .map_or(message.clone(), |n| n.message.clone());
        return Err(CliError::new("ended-by-server", message));
    }
    out.line(
        2,
        &format!(
            "{} APDUs in {} round trips, {} ms",
            result.apdus, result.round_trips, result.duration_ms
        ),
    );
    out.line(0, "Update complete");
    Ok(())
}
