// The local daemon that keeps old pages working: they embed
//   <img src="http://localhost:27001/<anything>.png?url=…&sessionId=…&pinrequired=…">
// and get a small passed or failed image back. It listens on the loopback interface only,
// serves nothing but those images, runs one update at a time, and asks the user at its
// terminal before a server not in the servers file may use the card.
import { createServer } from "node:http";
import { interactive, ask } from "./terminal.mjs";
import { approveAlways, isApproved } from "./servers.mjs";
import { FAILED_PNG, PASSED_PNG } from "./png.mjs";
import { runUpdate } from "./run.mjs";
import { CliError } from "./core.mjs";

const IMAGE_PATH = /^\/[^/]*\.png$/;
const LOCAL_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]"]);
const WAIT_MS = 120_000;

/**
 * Starts the daemon on 127.0.0.1:`options.port`; resolves to the http.Server once it
 * listens. `log(level, line)` as for runUpdate.
 */
export async function startDaemon(lib, options, { log, serversFile }) {
  let queue = Promise.resolve();
  const server = createServer((request, response) => {
    const reply = (status, body, headers = {}) => {
      response.writeHead(status, {
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "Content-Length": body.length,
        ...headers,
      });
      response.end(body);
    };
    const image = (passed) => reply(200, passed ? PASSED_PNG : FAILED_PNG, { "Content-Type": "image/png" });
    const text = (status, message, headers) =>
      reply(status, Buffer.from(`${message}\n`), { "Content-Type": "text/plain; charset=utf-8", ...headers });

    // A page elsewhere could reach us through a name it controls (DNS rebinding): only the
    // loopback names are served.
    const host = (request.headers.host ?? "").replace(/:\d+$/, "").toLowerCase();
    if (!LOCAL_HOSTS.has(host)) return text(421, "misdirected request");
    const parsed = new URL(request.url ?? "/", "http://127.0.0.1/");
    if (!IMAGE_PATH.test(parsed.pathname)) return text(404, "not found");
    if (request.method !== "GET") return text(405, "method not allowed", { Allow: "GET" });

    let job;
    try {
      job = lib.parseLegacyUrl(request.url);
    } catch (e) {
      log(0, `Refused ${parsed.pathname}: ${e.message}`);
      return image(false);
    }
    queue = queue.then(() =>
      serve(lib, options, job, { log, serversFile }).then(
        () => image(true),
        (e) => {
          log(0, `Update failed (${e?.code ?? "error"}): ${e?.message ?? e}`);
          if (e?.hint) log(0, `  ${e.hint}`);
          image(false);
        },
      ),
    );
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, "127.0.0.1", resolve);
  });
  log(0, `Daemon waiting on 127.0.0.1:${server.address().port}...`);
  return server;
}

async function serve(lib, options, job, { log, serversFile }) {
  const target = new URL(lib.checkServerUrl(job.url).url);
  if (!(await isApproved(serversFile, target))) {
    if (!interactive()) {
      throw new CliError("not-approved", `${target.href} is not in ${serversFile} and there is no terminal to ask`);
    }
    const answer = (await ask(`Allow ${target.href} to use your card? [o]nce, [a]lways, [N]o: `)).toLowerCase();
    if (answer === "a" || answer === "always") {
      await approveAlways(serversFile, target);
    } else if (answer !== "o" && answer !== "once") {
      throw new CliError("not-approved", `${target.origin} was not approved`);
    }
  }
  if (job.pinRequired && options.pin === undefined && !interactive()) {
    throw new CliError("pin-failed", "the page asks for a PIN and there is no terminal to ask");
  }
  // A page's request waits for a reader and a card at most this long.
  const waitSignal = AbortSignal.timeout(WAIT_MS);
  const result = await runUpdate(lib, options, { ...job, pin: options.pin }, { log, waitSignal });
  log(0, `Update complete: ${result.apdus} APDUs, ${result.roundTrips} round trips`);
  return result;
}
