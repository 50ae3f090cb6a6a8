// The Node.js daemon's command line (the reader options are the OCF client's, as the native
// agent's):
//   node bin/card-relay.mjs --daemon [--port n] [--servers-file path] [-r <reader>] [-v|-q]
//                           [-p [pin]] [--dialect d] [--simulator [profile]] [--card c]
// One card update against a URL is the native agent: `card-relay <url>` (agent/).

export const USAGE = `usage: node bin/card-relay.mjs --daemon [options]
       serve old pages' <img src="http://localhost:27001/…png?url=…"> (one update per image)
       (one update against a URL, and the reader list: the native agent, card-relay <url>)

options:
  -r, --reader <name>        use the reader whose name is or contains <name> (default: the first)
  -v, --verbose              also print the reader, the ATR and the totals
  -q, --quiet                print only the outcome
  -p, --pin [pin]            verify the PIN a page asks for with the PIN given; asked for without
                             echo when no value is given
      --dialect <d>          openscdp (default), gp or seram (GP SERAM: <url> is the Remote
                             Agent's endpoint base)
      --simulator [profile]  a simulated reader (libccid profile name, default "default")
      --card <card>          the simulated card: seed (default) or pin (PIN 123456)
      --show-secrets         show VERIFY data in the trace
      --daemon               run as the local daemon
      --port <n>             the daemon's port on 127.0.0.1 (default 27001)
      --servers-file <path>  approved servers (default ~/.card-update-servers)
  -h, --help                 this text`;

/** A mistake on the command line: exit status 2 with the usage text. */
export class UsageError extends Error {}

// An optional value is the next argument unless it is an option or looks like a URL.
function optionalValue(next) {
  return next !== undefined && !next.startsWith("-") && !/[:/]/.test(next);
}

/**
 * Parses argv (without node and the script) into
 * { url, reader, list, sessionId, reset, verbosity, pin, dialect, simulator, card,
 *   showSecrets, daemon, port, serversFile, help }.
 * `pin` is undefined (no PIN check), true (ask) or the PIN; `simulator` undefined or a profile.
 */
export function parseArgs(argv) {
  const out = {
    url: undefined,
    reader: undefined,
    list: false,
    sessionId: undefined,
    reset: true,
    verbosity: 1,
    pin: undefined,
    dialect: "openscdp",
    simulator: undefined,
    card: "seed",
    showSecrets: false,
    daemon: false,
    port: 27001,
    serversFile: undefined,
    help: false,
  };
  const args = [...argv];
  const required = (name) => {
    const value = args.shift();
    if (value === undefined) throw new UsageError(`${name} needs a value`);
    return value;
  };
  while (args.length > 0) {
    let arg = args.shift();
    let inline;
    const eq = arg.startsWith("--") ? arg.indexOf("=") : -1;
    if (eq > 0) {
      inline = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    const value = (name) => inline ?? required(name);
    switch (arg) {
      case "-r": case "--reader": out.reader = value(arg); break;
      case "-l": case "--list": out.list = true; break;
      case "-s": case "--session": case "--session-id": out.sessionId = value(arg); break;
      case "-n": case "--no-reset": out.reset = false; break;
      case "-v": case "--verbose": out.verbosity = 2; break;
      case "-q": case "--quiet": out.verbosity = 0; break;
      case "-p": case "--pin":
        out.pin = inline ?? (optionalValue(args[0]) ? args.shift() : true);
        break;
      case "--dialect": out.dialect = value(arg); break;
      case "--simulator":
        out.simulator = inline ?? (optionalValue(args[0]) ? args.shift() : "default");
        break;
      case "--card": out.card = value(arg); break;
      case "--show-secrets": out.showSecrets = true; break;
      case "--daemon": out.daemon = true; break;
      case "--port": out.port = Number(value(arg)); break;
      case "--servers-file": out.serversFile = value(arg); break;
      case "-h": case "--help": out.help = true; break;
      default:
        if (arg.startsWith("-") && arg !== "-") throw new UsageError(`unknown option ${arg}`);
        if (out.url !== undefined) throw new UsageError(`more than one url: ${arg}`);
        out.url = arg;
    }
  }
  if (!["openscdp", "gp", "seram"].includes(out.dialect)) {
    throw new UsageError(`--dialect must be openscdp, gp or seram, not ${out.dialect}`);
  }
  if (out.dialect === "seram" && !out.daemon && !out.list && !out.help && !out.sessionId) {
    throw new UsageError("--dialect seram needs a session id (-s <id>)");
  }
  if (!["seed", "pin"].includes(out.card)) {
    throw new UsageError(`--card must be seed or pin, not ${out.card}`);
  }
  if (!Number.isInteger(out.port) || out.port < 0 || out.port > 65535) {
    throw new UsageError("--port must be a port number");
  }
  if (out.daemon && out.url !== undefined) {
    throw new UsageError("--daemon takes no url: pages send it");
  }
  if (!out.help && !out.daemon) {
    throw new UsageError(
      "this script runs only the daemon (--daemon): one card update against a url, and -l, are the native agent's (card-relay <url>)",
    );
  }
  return out;
}
