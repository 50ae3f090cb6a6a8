//! The command line, modelled on the OCF client's (`ocf-cc.jar`) and the same as the Node.js
//! command line it replaces:
//! `card-relay [-r <reader>] [-s <id>] [-n] [-l] [-v|-q] [-p [pin]] [--dialect d]
//! [--simulator [profile]] [--card c] [--show-secrets] <url>`.

/// The usage text.
pub const USAGE: &str = "\
usage: card-relay [options] <url>        run one card update against <url>
       card-relay -l                       list the smart card readers
       card-relay --daemon                 serve old pages' <img> requests and the page API
                                           on 127.0.0.1:27001

options:
  -r, --reader <name>        use the reader whose name is or contains <name> (default: the first)
  -l, --list                 list the readers and exit
  -s, --session <id>         start with Cookie: JSESSIONID=<id> (links the update to a web session);
                             with --dialect seram: the SERAM session id (required)
      --session-id <id>      the same
  -n, --no-reset             leave the card powered at the end
  -v, --verbose              also print the reader, the ATR and the totals
  -q, --quiet                print only the outcome
  -p, --pin [pin]            verify the PIN (reference 0x81) on the card first; asked for without
                             echo when no value is given (one line of standard input without a
                             terminal); typed on the reader's PIN pad where it has one
      --dialect <d>          openscdp (default), gp or seram (GP SERAM: <url> is the Remote
                             Agent's endpoint base)
      --usb                  raw CCID through USB, for readers no system driver serves
                             (with -l: list the USB readers)
      --simulator [profile]  a simulated CCID reader (libccid profile name, default \"default\")
      --card <card>          the simulated card: seed (default) or pin (PIN 123456)
      --show-secrets         show VERIFY data in the trace
      --daemon               run the local daemon (old pages' <img> requests, the page API)
      --port <n>             the daemon's port (default 27001; 0 picks a free one)
      --servers-file <path>  the approved card update servers (default ~/.card-update-servers)
      --origins-file <path>  the approved page origins (default ~/.card-relay-origins)
  -h, --help                 this text";

/// What the user asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The server's URL.
    pub url: Option<String>,
    /// A reader name or part of one.
    pub reader: Option<String>,
    /// `-l`.
    pub list: bool,
    /// `-s`: the OCF session id.
    pub session_id: Option<String>,
    /// Reset the card at the end (not `-n`).
    pub reset: bool,
    /// 0 quiet, 1 normal, 2 verbose.
    pub verbosity: u8,
    /// `-p`: `None` no PIN check, `Some(None)` ask, `Some(Some(pin))` this PIN.
    pub pin: Option<Option<String>>,
    /// `openscdp` or `gp`.
    pub dialect: String,
    /// `--usb`: raw CCID over USB instead of PC/SC.
    pub usb: bool,
    /// `--simulator`: the reader profile.
    pub simulator: Option<String>,
    /// `--card`: `seed` or `pin`.
    pub card: String,
    /// `--show-secrets`.
    pub show_secrets: bool,
    /// `-h`.
    pub help: bool,
    /// `--daemon`.
    pub daemon: bool,
    /// `--port`.
    pub port: u16,
    /// `--servers-file`.
    pub servers_file: Option<String>,
    /// `--origins-file`.
    pub origins_file: Option<String>,
    /// The PIN reference `-p` verifies (the daemon: the page's `pinRequired`).
    pub pin_reference: u8,
    /// An application SELECTed before the PIN check (the page's `pinSelect`).
    pub pin_select: Option<Vec<u8>>,
}

/// A mistake on the command line: exit status 2 with the usage text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

/// An optional value is the next argument unless it is an option or looks like a URL.
fn optional_value(next: Option<&String>) -> bool {
    next.is_some_and(|n| !n.starts_with('-') && !n.contains([':', '/']))
}

/// Parses the arguments (without the program name).
pub fn parse(argv: &[String]) -> Result<Options, UsageError> {
    let mut out = Options {
        url: None,
        reader: None,
        list: false,
        session_id: None,
        reset: true,
        verbosity: 1,
        pin: None,
        dialect: "openscdp".into(),
        usb: false,
        simulator: None,
        card: "seed".into(),
        show_secrets: false,
        help: false,
        daemon: false,
        port: 27001,
        servers_file: None,
        origins_file: None,
        pin_reference: crate::pin::REFERENCE,
        pin_select: None,
    };
    let mut args = argv.iter().peekable();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_owned())),
            _ => (arg.as_str(), None),
        };
        let value = |args: &mut std::iter::Peekable<std::slice::Iter<'_, String>>| {
            inline
                .clone()
                .or_else(|| args.next().cloned())
                .ok_or_else(|| UsageError(format!("{name} needs a value")))
        };
        match name {
            "-r" | "--reader" => out.reader = Some(value(&mut args)?),
            "-l" | "--list" => out.list = true,
            "-s" | "--session" | "--session-id" => out.session_id = Some(value(&mut args)?),
            "-n" | "--no-reset" => out.reset = false,
            "-v" | "--verbose" => out.verbosity = 2,
            "-q" | "--quiet" => out.verbosity = 0,
            "-p" | "--pin" => {
                let given = match inline.clone() {
                    Some(v) => Some(v),
                    None if optional_value(args.peek().copied()) => args.next().cloned(),
                    None => None,
                };
                out.pin = Some(given);
            }
            "--dialect" => out.dialect = value(&mut args)?,
            "--simulator" => {
                out.simulator = Some(match inline.clone() {
                    Some(v) => v,
                    None if optional_value(args.peek().copied()) => {
                        args.next().cloned().unwrap_or_default()
                    }
                    None => "default".into(),
                });
            }
            "--usb" => out.usb = true,
            "--card" => out.card = value(&mut args)?,
            "--show-secrets" => out.show_secrets = true,
            "-h" | "--help" => out.help = true,
            "--daemon" => out.daemon = true,
            "--port" => {
                let v = value(&mut args)?;
                out.port = v
                    .parse()
                    .map_err(|_| UsageError(format!("--port must be a port number, not {v}")))?;
            }
            "--servers-file" => out.servers_file = Some(value(&mut args)?),
            "--origins-file" => out.origins_file = Some(value(&mut args)?),
            _ if name.starts_with('-') && name != "-" => {
                return Err(UsageError(format!("unknown option {arg}")))
            }
            _ => {
                if out.url.is_some() {
                    return Err(UsageError(format!("more than one url: {arg}")));
                }
                out.url = Some(arg.clone());
            }
        }
    }
    if !["openscdp", "gp", "seram"].contains(&out.dialect.as_str()) {
        return Err(UsageError(format!(
            "--dialect must be openscdp, gp or seram, not {}",
            out.dialect
        )));
    }
    if out.dialect == "seram" && out.session_id.is_none() && !out.list && !out.help && !out.daemon {
        return Err(UsageError(
            "--dialect seram needs a session id (-s <id>)".into(),
        ));
    }
    if !["seed", "pin"].contains(&out.card.as_str()) {
        return Err(UsageError(format!(
            "--card must be seed or pin, not {}",
            out.card
        )));
    }
    if !out.help && !out.list && !out.daemon && out.url.is_none() {
        return Err(UsageError("no url given".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn optional_values_never_swallow_the_url() {
        let o = parse(&args(&["-p", "http://127.0.0.1:1/rt/test"])).unwrap();
        assert_eq!(o.pin, Some(None));
        assert_eq!(o.url.as_deref(), Some("http://127.0.0.1:1/rt/test"));
        let o = parse(&args(&["-p", "123456", "--simulator", "https://h/u"])).unwrap();
        assert_eq!(o.pin, Some(Some("123456".into())));
        assert_eq!(o.url.as_deref(), Some("https://h/u"));
        assert_eq!(o.simulator.as_deref(), Some("default"));
        let o = parse(&args(&["--simulator", "GemPCTwin", "--pin=1", "-l"])).unwrap();
        assert_eq!(o.simulator.as_deref(), Some("GemPCTwin"));
        assert_eq!(o.pin, Some(Some("1".into())));
    }

    #[test]
    fn mistakes_are_usage_errors() {
        let e = |a: &[&str]| parse(&args(a)).unwrap_err().0;
        assert_eq!(e(&[]), "no url given");
        assert_eq!(
            e(&["--dialect", "x", "u"]),
            "--dialect must be openscdp, gp or seram, not x"
        );
        assert_eq!(
            e(&["--card", "x", "u"]),
            "--card must be seed or pin, not x"
        );
        assert_eq!(e(&["-r"]), "-r needs a value");
        assert_eq!(
            e(&["--dialect", "seram", "u"]),
            "--dialect seram needs a session id (-s <id>)"
        );
        assert_eq!(e(&["--bogus", "u"]), "unknown option --bogus");
        assert_eq!(e(&["a", "b"]), "more than one url: b");
    }
}
