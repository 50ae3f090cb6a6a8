#!/usr/bin/env node
// The Node.js daemon of card-relay (old pages' <img> requests on 127.0.0.1:27001), kept until
// the native agent takes it over. The command line that runs one card update against a URL
// is the native agent `card-relay` (agent/). See `node bin/card-relay.mjs --help`.
import { parseArgs, UsageError, USAGE } from "./lib/args.mjs";
import { CliError, loadCore } from "./lib/core.mjs";
import { startDaemon } from "./lib/daemon.mjs";
import { defaultServersFile } from "./lib/servers.mjs";

/** Runs the daemon; resolves to the exit status. */
async function main(argv) {
  let options;
  try {
    options = parseArgs(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`card-relay: ${e.message}\n${USAGE}\n`);
    return 2;
  }
  if (options.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const log = (level, line) => {
    if (level <= options.verbosity) process.stdout.write(`${line}\n`);
  };
  const controller = new AbortController();
  process.once("SIGINT", () => controller.abort());
  process.once("SIGTERM", () => controller.abort());
  try {
    const lib = await loadCore({ simulator: options.simulator !== undefined });
    const server = await startDaemon(lib, options, {
      log,
      serversFile: options.serversFile ?? defaultServersFile(),
    });
    await new Promise((resolve) => controller.signal.addEventListener("abort", resolve));
    server.close();
    server.closeAllConnections();
    return 0;
  } catch (e) {
    if (!(e instanceof CliError) && !(e instanceof Error && typeof e.code === "string")) throw e;
    process.stderr.write(`Daemon failed (${e.code}): ${e.message}\n`);
    if (e.hint) process.stderr.write(`${e.hint}\n`);
    return 1;
  }
}

const status = await main(process.argv.slice(2));
// The core's timers (timeouts raced against answers that came first) would keep Node
// running for up to a minute after the work is done: exit once the output is written.
process.stdout.write("", () => process.stderr.write("", () => process.exit(status)));
