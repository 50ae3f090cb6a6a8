#!/usr/bin/env node
// card-relay for Node.js: the OCF client's command line (one card update against a URL) and
// its daemon (old pages' <img> requests on 127.0.0.1:27001). See `card-relay --help`.
import { parseArgs, UsageError, USAGE } from "./lib/args.mjs";
import { CliError, listReaders, loadCore } from "./lib/core.mjs";
import { startDaemon } from "./lib/daemon.mjs";
import { runUpdate } from "./lib/run.mjs";
import { defaultServersFile } from "./lib/servers.mjs";

/** Runs the command line; resolves to the exit status. */
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
  try {
    const lib = await loadCore({ simulator: options.simulator !== undefined });
    if (options.list) {
      const readers = await listReaders(lib, options);
      if (readers.length === 0) log(0, "No smart card reader found.");
      readers.forEach((r, i) => log(0, `${i}: ${r.name} (${r.description})`));
      return 0;
    }
    if (options.daemon) {
      const server = await startDaemon(lib, options, {
        log,
        serversFile: options.serversFile ?? defaultServersFile(),
      });
      process.once("SIGTERM", () => controller.abort());
      await new Promise((resolve) => controller.signal.addEventListener("abort", resolve));
      server.close();
      server.closeAllConnections();
      return 0;
    }
    const result = await runUpdate(
      lib,
      options,
      {
        url: options.url,
        sessionId: options.sessionId,
        pinRequired: options.pin === undefined ? undefined : 0x81,
        pin: options.pin,
      },
      { log, signal: controller.signal },
    );
    log(2, `${result.apdus} APDUs in ${result.roundTrips} round trips, ${Math.round(result.durationMs)} ms`);
    log(0, "Update complete");
    return 0;
  } catch (e) {
    if (!(e instanceof CliError) && !(e instanceof Error && typeof e.code === "string")) throw e;
    process.stderr.write(`${options.list ? "Listing failed" : "Update failed"} (${e.code}): ${e.message}\n`);
    if (e.hint) process.stderr.write(`${e.hint}\n`);
    return 1;
  }
}

const status = await main(process.argv.slice(2));
// The core's timers (timeouts raced against answers that came first) would keep Node
// running for up to a minute after the work is done: exit once the output is written.
process.stdout.write("", () => process.stderr.write("", () => process.exit(status)));
