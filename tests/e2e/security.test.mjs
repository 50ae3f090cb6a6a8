// The security rules of SECURITY.md in headless Chromium, against the reference server and
// the simulated reader: which servers the library talks to (https or localhost, approval of
// cross-origin servers, persisted and revocable), where the PIN may go, and the demo page's
// Content-Security-Policy. The server-side rules (body limit, session time, cookie) are
// tested natively in server/tests/ram.rs.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { startServer, launchBrowser, root } from "./harness.mjs";

const STRICT_CSP = {
  "default-src": ["'self'"],
  "script-src": ["'self'", "'wasm-unsafe-eval'"],
  // The servers a user enters: any https origin, plain http on loopback only (as the
  // library itself allows, SECURITY.md).
  "connect-src": ["'self'", "https:", "http://localhost:*", "http://127.0.0.1:*"],
};

/** The only values a directive may hold: 'self' everywhere; the rest where listed. */
const ALLOWED = {
  "script-src": ["'self'", "'wasm-unsafe-eval'"],
  "connect-src": STRICT_CSP["connect-src"],
};

let server;
let other;
let browser;

before(async () => {
  server = await startServer();
  // A second server on another port: another origin, which allows the first one's pages.
  other = await startServer({ args: ["--allow-origin", new URL(server.url).origin] });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await other?.stop();
  await server?.stop();
});

/** Path of the host page for the library-level tests; see openPage. */
const HOST_PAGE = "security-host.html";

/**
 * A page of the first server's origin with the package loaded and every request it makes
 * recorded (URL, method, body). It is a blank page without a CSP, so that only the library
 * stands between the page and a server: "no request was sent" is the library's doing. Playwright serves the blank
 * HTML; the package, the simulator and both servers are the real ones. As a served-by-
 * Playwright document has no IP address space, Chromium treats it as public and asks
 * for the local-network-access permission before it reaches the loopback servers: the
 * context grants it, as a user would. `t` inside the page holds the package, a reader
 * factory and codeOf. Close the page's context when done.
 */
async function openPage() {
  const context = await browser.newContext({ permissions: ["local-network-access"] });
  const page = await context.newPage();
  const requests = [];
  const errors = [];
  await page.route(new URL(HOST_PAGE, server.url).href, (route) =>
    route.fulfill({ contentType: "text/html", body: "<!doctype html><title>host</title>" }),
  );
  page.on("request", (r) =>
    requests.push({ url: r.url(), method: r.method(), body: r.postDataBuffer() ?? Buffer.alloc(0) }),
  );
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(new URL(HOST_PAGE, server.url).href);
  await loadPackage(page);
  return { page, requests, errors };
}

/** Imports and initialises the package in the page and defines `t`. */
async function loadPackage(page) {
  await page.evaluate(async () => {
    const relay = await import("/pkg-sim/card-relay.js");
    await relay.default();
    const reader = (card = "seed") => relay.CardReader.open(relay.createSimulatedReader({ card }));
    const codeOf = async (promise) => {
      try {
        await promise;
        return "resolved";
      } catch (e) {
        return e instanceof relay.CardRelayError ? e.code : `not a CardRelayError: ${e}`;
      }
    };
    globalThis.t = { relay, reader, codeOf };
  });
}

/** The requests that went to `origin`. */
function requestsTo(requests, origin) {
  return requests.filter((r) => new URL(r.url).origin === origin);
}

test("plain http to a host other than localhost is refused before any request", { timeout: 60_000 }, async () => {
  const { page, requests } = await openPage();
  const urls = ["http://card-server.invalid/rt/test", "http://192.0.2.7:8080/rt/test", "http://localhost.example/rt"];
  const codes = await page.evaluate(async (urls) => {
    const reader = await t.reader();
    try {
      const out = [];
      for (const url of urls) out.push(await t.codeOf(t.relay.cardUpdate(reader, url, { approve: () => "once" })));
      return out;
    } finally {
      await reader.close();
    }
  }, urls);
  assert.deepEqual(codes, ["insecure-url", "insecure-url", "insecure-url"]);
  for (const url of urls) {
    assert.deepEqual(requestsTo(requests, new URL(url).origin), [], `no request to ${url}`);
  }
  await page.context().close();
});

test("a cross-origin server without approval gets no request", { timeout: 60_000 }, async () => {
  const { page, requests } = await openPage();
  const url = new URL("rt/test", other.url).href;
  const result = await page.evaluate(async (url) => {
    const asked = [];
    const reader = await t.reader();
    try {
      return {
        noCallback: await t.codeOf(t.relay.cardUpdate(reader, url)),
        refused: await t.codeOf(
          t.relay.cardUpdate(reader, url, {
            approve: (origin) => {
              asked.push(origin);
              return false;
            },
          }),
        ),
        asked,
      };
    } finally {
      await reader.close();
    }
  }, url);
  assert.equal(result.noCallback, "not-approved");
  assert.equal(result.refused, "not-approved");
  assert.deepEqual(result.asked, [new URL(other.url).origin], "approve() is asked with the server's origin");
  assert.deepEqual(requestsTo(requests, new URL(other.url).origin), []);
  await page.context().close();
});

test("a line break in agentId forges no request header: no request, network-error", { timeout: 60_000 }, async () => {
  // Fetch standard, "header value": no CR, LF or NUL (RFC 9110 §5.5). GP's X-Admin-From
  // carries agentId as given; a value with a line feed must fail the update, not add a field.
  const { page, requests } = await openPage();
  // A GP Amd B admin server of the page's origin that ends every session at once (204).
  const url = new URL("gp-admin", server.url).href;
  const seen = [];
  await page.route(url, (route) => {
    seen.push(route.request().headers());
    return route.fulfill({ status: 204 });
  });
  const result = await page.evaluate(async (url) => {
    const reader = await t.reader();
    try {
      const out = [];
      for (const agentId of ["agent\nX-Evil\nx", "agent\r\nX-Evil: x", "agent-1"]) {
        out.push(await t.codeOf(t.relay.cardUpdate(reader, url, { dialect: "gp", approve: () => "once", agentId })));
      }
      return out;
    } finally {
      await reader.close();
    }
  }, url);
  // The well-formed id goes through: the route answers, and only for it.
  assert.deepEqual(result, ["network-error", "network-error", "resolved"]);
  assert.deepEqual(
    seen.map((h) => [h["x-admin-from"], h["x-evil"]]),
    [["agent-1", undefined]],
  );
  assert.equal(requests.filter((r) => r.url === url).length, 1);
  await page.context().close();
});

test("approvals: once is not kept, always persists across reloads, revokeServer removes it", { timeout: 90_000 }, async () => {
  const { page, requests, errors } = await openPage();
  const origin = new URL(other.url).origin;
  const url = new URL("rt/test", other.url).href;
  const once = await page.evaluate(async (url) => {
    const reader = await t.reader();
    try {
      const r = await t.relay.cardUpdate(reader, url, { approve: () => "once" });
      return { status: r.status, approved: t.relay.approvedServers() };
    } finally {
      await reader.close();
    }
  }, url);
  assert.equal(once.status, "completed");
  assert.deepEqual(once.approved, []);
  const posts = requestsTo(requests, origin).filter((r) => r.method === "POST").length;
  assert.ok(posts >= 2, `the approved cross-origin session ran (${posts} POSTs)`);

  const always = await page.evaluate(async (url) => {
    const reader = await t.reader();
    try {
      const r = await t.relay.cardUpdate(reader, url, { approve: () => "always" });
      return { status: r.status, approved: t.relay.approvedServers() };
    } finally {
      await reader.close();
    }
  }, url);
  assert.equal(always.status, "completed");
  assert.deepEqual(always.approved, [origin]);

  await page.reload();
  await loadPackage(page);
  const stored = await page.evaluate(() => Object.values(localStorage).join("\n"));
  assert.ok(stored.includes(origin), "the approval is in localStorage");
  const afterReload = await page.evaluate(async (url) => {
    const reader = await t.reader();
    let asked = 0;
    try {
      const r = await t.relay.cardUpdate(reader, url, {
        approve: () => {
          asked += 1;
          return false;
        },
      });
      return { status: r.status, asked, approved: t.relay.approvedServers() };
    } finally {
      await reader.close();
    }
  }, url);
  assert.deepEqual(afterReload, { status: "completed", asked: 0, approved: [origin] });

  const before = requestsTo(requests, origin).length;
  const revoked = await page.evaluate(async ({ url, origin }) => {
    t.relay.revokeServer(origin);
    const reader = await t.reader();
    try {
      await t.relay.cardUpdate(reader, url);
      return { code: "resolved" };
    } catch (e) {
      return { code: e.code, approved: t.relay.approvedServers(), stored: Object.values(localStorage).join("\n") };
    } finally {
      await reader.close();
    }
  }, { url, origin });
  assert.equal(revoked.code, "not-approved");
  assert.deepEqual(revoked.approved, []);
  assert.ok(!revoked.stored.includes(origin), "the approval is gone from localStorage");
  assert.equal(requestsTo(requests, origin).length, before, "no request after the revocation");
  assert.deepEqual(errors, []);
  await page.context().close();
});

test("the trace masks VERIFY data unless showSecrets", { timeout: 60_000 }, async () => {
  const { page } = await openPage();
  // /rt/test sends VERIFY with the seed's PIN "648219" (ASCII 36 34 38 32 31 39).
  const traces = await page.evaluate(async () => {
    const run = async (showSecrets) => {
      const reader = await t.reader();
      const lines = [];
      try {
        await t.relay.cardUpdate(reader, "/rt/test", { showSecrets, onTrace: (line) => lines.push(line) });
        return lines.join("\n");
      } finally {
        await reader.close();
      }
    };
    return { masked: await run(false), shown: await run(true) };
  });
  const verify = (trace) => trace.split("\n").find((l) => / C: 00 20 00 81 - VERIFY Lc=6/.test(l));
  assert.match(verify(traces.masked) ?? "", /Lc=6 \*{6}$/, traces.masked);
  assert.ok(!traces.masked.includes("36 34 38 32 31 39"), "no PIN bytes in the masked trace");
  assert.ok(!traces.masked.includes("648219"), "no PIN text in the masked trace");
  assert.ok(!(verify(traces.shown) ?? "").includes("******"), traces.shown);
  assert.ok(traces.shown.includes("36 34 38 32 31 39"), "showSecrets dumps the VERIFY data");
  await page.context().close();
});

test("a PIN given to pin() reaches the card only: no request body, trace or notification", { timeout: 60_000 }, async () => {
  const { page, requests } = await openPage();
  // The PIN card's PIN (src/sim/card.rs).
  const pin = "123456";
  const result = await page.evaluate(async (pin) => {
    const reader = await t.reader("pin");
    const seen = [];
    try {
      const r = await t.relay.cardUpdate(reader, "/rt/pin-test", {
        pinRequired: 0x81,
        pin: () => pin,
        onTrace: (line) => seen.push(line),
        onNotification: (n) => seen.push(n.message),
      });
      return { status: r.status, seen: seen.join("\n") };
    } finally {
      await reader.close();
    }
  }, pin);
  assert.equal(result.status, "completed");
  const bodies = requests.filter((r) => r.method === "POST").map((r) => r.body);
  assert.ok(bodies.length >= 2, "the session posted");
  const ascii = Buffer.from(pin);
  for (const body of bodies) {
    assert.equal(body.indexOf(ascii), -1, "no request body contains the PIN");
    assert.ok(!body.toString("hex").includes(ascii.toString("hex")), "nor its hex form");
  }
  for (const r of requests) assert.ok(!r.url.includes(pin), "no URL contains the PIN");
  assert.ok(!result.seen.includes(pin), "no trace line or notification contains the PIN");
  assert.ok(!result.seen.includes("31 32 33 34 35 36"), "nor its bytes");
  await page.context().close();
});

test("the demo's Content-Security-Policy is the strict one and the page runs under it", { timeout: 60_000 }, async () => {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.addInitScript(() => {
    globalThis.cspViolations = [];
    document.addEventListener("securitypolicyviolation", (e) =>
      globalThis.cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`),
    );
  });
  await page.goto(`${server.url}?reader=simulator&card=seed&url=/rt/test&autorun=1`);
  const policy = await page.$eval('meta[http-equiv="Content-Security-Policy"]', (m) => m.content);
  const directives = Object.fromEntries(
    policy
      .split(";")
      .map((d) => d.trim().split(/\s+/))
      .filter((d) => d[0])
      .map(([name, ...values]) => [name, values]),
  );
  for (const [name, values] of Object.entries(STRICT_CSP)) assert.deepEqual(directives[name], values, policy);
  for (const [name, values] of Object.entries(directives)) {
    for (const value of values) {
      assert.ok((ALLOWED[name] ?? ["'self'"]).includes(value), `${name} ${value} is not strict`);
    }
  }
  await page.waitForFunction(
    () => ["passed", "failed"].includes(document.getElementById("result").dataset.status),
    null,
    { timeout: 30_000 },
  );
  assert.equal(await page.$eval("#result", (el) => el.dataset.status), "passed");
  // The policy is in force: an inline script (not 'self') does not run.
  const inlineRan = await page.evaluate(async () => {
    const script = document.createElement("script");
    script.textContent = "globalThis.inlineRan = true;";
    document.body.append(script);
    await new Promise((resolve) => setTimeout(resolve, 100));
    return globalThis.inlineRan === true;
  });
  assert.equal(inlineRan, false, "an inline script is blocked by the policy");
  const violations = await page.evaluate(() => globalThis.cspViolations);
  assert.deepEqual(violations, ["script-src-elem inline"], "only the inline script violated the policy");
  assert.deepEqual(errors, []);
  await page.close();
});

test("the published JavaScript has no eval or Function constructor", () => {
  for (const dir of ["pkg", "pkg-sim"]) {
    // One module: the API layer with wasm-bindgen's glue and platform.js (scripts/package.mjs).
    for (const file of ["card-relay.js"]) {
      const source = readFileSync(path.join(root, dir, file), "utf8");
      assert.doesNotMatch(source, /\beval\s*\(|\bnew\s+Function\s*\(|\bFunction\s*\(\s*["'`]/, `${dir}/${file}`);
    }
  }
});
