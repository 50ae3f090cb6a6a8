// The demo against a RAMOverHTTP server the user enters: another port of 127.0.0.1 (another
// origin) that answers CORS for the demo's origin, in both dialects, through the demo's own
// Content-Security-Policy. And a page whose CSP does not allow the server: the library says
// `csp-blocked`, not `network-error`.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, launchBrowser } from "./harness.mjs";

let server;
let other;
let browser;

before(async () => {
  server = await startServer();
  // The user's server: another origin, which allows the demo's origin (CORS).
  other = await startServer({ args: ["--allow-origin", new URL(server.url).origin] });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await other?.stop();
  await server?.stop();
});

for (const [dialect, path] of [
  ["openscdp", "rt/test"],
  ["gp", "rt/gp-test"],
]) {
  test(`the demo runs the seed session on a server of another origin (${dialect})`, { timeout: 60_000 }, async () => {
    const page = await browser.newPage();
    const errors = [];
    const violations = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.exposeFunction("reportViolation", (v) => violations.push(v));
    await page.addInitScript(() =>
      document.addEventListener("securitypolicyviolation", (e) =>
        globalThis.reportViolation(`${e.effectiveDirective} ${e.blockedURI}`),
      ),
    );
    const target = new URL(path, other.url).href;
    const query = new URLSearchParams({ reader: "simulator", card: "seed", url: target, dialect, autorun: "1" });
    await page.goto(`${server.url}?${query}`);
    // The demo asks before it lets another origin use the card.
    await page.click("#approve-once");
    await page.waitForFunction(
      () => ["passed", "failed"].includes(document.getElementById("result").dataset.status),
      null,
      { timeout: 30_000 },
    );
    const result = await page.$eval("#result", (el) => ({ ...el.dataset }));
    const trace = await page.textContent("#trace");
    assert.equal(result.status, "passed", `${result.code}: ${trace}`);
    if (dialect === "openscdp") assert.equal(result.apdus, "5", trace);
    else assert.ok(Number(result.apdus) >= 2, trace);
    assert.ok(trace.includes(`Connecting to ${target}`), trace);
    assert.deepEqual(violations, []);
    assert.deepEqual(errors, []);
    await page.close();
  });
}

test("a page whose CSP blocks the server gets csp-blocked with a connect-src hint", { timeout: 60_000 }, async () => {
  // Local network access is granted (see below): only the page's CSP stands in the way.
  const context = await browser.newContext({ permissions: ["local-network-access"] });
  const page = await context.newPage();
  const hostPage = new URL("csp-host.html", server.url).href;
  const policy = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'";
  await page.route(hostPage, (route) =>
    route.fulfill({
      contentType: "text/html",
      headers: { "Content-Security-Policy": policy },
      body: "<!doctype html><title>csp host</title>",
    }),
  );
  await page.goto(hostPage);
  const target = new URL("rt/test", other.url).href;
  const outcome = await page.evaluate(async (target) => {
    const relay = await import("/pkg-sim/card-relay.js");
    await relay.default();
    const reader = await relay.CardReader.open(relay.createSimulatedReader({ card: "seed" }));
    try {
      await relay.cardUpdate(reader, target, { approve: () => "once" });
      return { code: "resolved" };
    } catch (e) {
      return { code: e.code, message: e.message, hint: e.hint };
    } finally {
      await reader.close();
    }
  }, target);
  assert.equal(outcome.code, "csp-blocked", JSON.stringify(outcome));
  assert.match(outcome.hint, /connect-src/);
  assert.match(outcome.message, /default-src 'self'/, "the message names the policy's directive");
  assert.ok(outcome.message.includes(target), outcome.message);
  await context.close();
});

test("approvals compare origins by the one origin rule", { timeout: 60_000 }, async () => {
  // An approval stored or revoked in another spelling (upper case, a path, the default
  // port) is the same origin: URL.origin, as the Rust core's session::origin. A page
  // served by Playwright has no IP address space, so Chromium asks for local network
  // access to reach the loopback server: granted, as a user would.
  const context = await browser.newContext({ permissions: ["local-network-access"] });
  const page = await context.newPage();
  const hostPage = new URL("origin-host.html", server.url).href;
  await page.route(hostPage, (route) =>
    route.fulfill({ contentType: "text/html", body: "<!doctype html><title>origin host</title>" }),
  );
  await page.goto(hostPage);
  const target = new URL("rt/test", other.url);
  const spelt = `HTTP://${target.host}/some/path`;
  const codes = await page.evaluate(
    async ({ target, spelt }) => {
      const relay = await import("/pkg-sim/card-relay.js");
      await relay.default();
      localStorage.setItem("card-relay.approved-servers", JSON.stringify([spelt]));
      const run = async () => {
        const reader = await relay.CardReader.open(relay.createSimulatedReader({ card: "seed" }));
        try {
          await relay.cardUpdate(reader, target);
          return "resolved";
        } catch (e) {
          return e.code;
        } finally {
          await reader.close();
        }
      };
      const before = await run();
      relay.revokeServer(spelt.toLowerCase().replace("/some/path", "/"));
      const after = await run();
      return { before, after, left: relay.approvedServers() };
    },
    { target: target.href, spelt },
  );
  assert.deepEqual(codes, { before: "resolved", after: "not-approved", left: [] });
  await context.close();
});
