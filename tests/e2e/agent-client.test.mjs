// The library's agent route (connectAgent, cardUpdate(agent, …)) in Node.js, against the
// world it meets: a loopback port nothing listens on, a port that accepts and never answers,
// and small HTTP servers speaking the agent's page API as issue 16 defines it (GET /v1/info;
// POST /v1/card-update answered with newline-delimited JSON events `notification`, `trace`,
// then one `result` or `error`; closing the request cancels). The real agent over PC/SC is
// tested in tests/pcsc/agent-page.test.mjs.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { createServer as createTcpServer } from "node:net";
import { once } from "node:events";

let lib;

before(async () => {
  // The package as Node.js users load it (scripts/build.sh); the agent route needs no
  // WebAssembly, so init() is not called.
  lib = await import(new URL("../../pkg-sim/card-relay.js", import.meta.url).href);
});

/** Listens on an ephemeral loopback port; resolves to { origin, close }. */
async function listen(server) {
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    origin: `http://127.0.0.1:${server.address().port}`,
    close: () => {
      server.closeAllConnections?.();
      server.close();
    },
  };
}

/** A free loopback port: bound, then released, so nothing listens on it. */
async function closedPort() {
  const { origin, close } = await listen(createTcpServer());
  close();
  return origin;
}

/**
 * An agent speaking the page API: `update(req, body, res)` answers POST /v1/card-update.
 * Resolves to { origin, close, posts } (posts: the parsed request bodies).
 */
async function fakeAgent(update, { readers } = {}) {
  const posts = [];
  const server = createServer(async (req, res) => {
    if (req.method === "GET" && req.url === "/v1/info") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(readers ? { version: "0.9.0", readers } : { version: "0.9.0" }));
      return;
    }
    if (req.method === "POST" && req.url === "/v1/card-update") {
      const chunks = [];
      for await (const c of req) chunks.push(c);
      const body = JSON.parse(Buffer.concat(chunks).toString());
      posts.push(body);
      await update(req, body, res);
      return;
    }
    res.writeHead(404).end();
  });
  return { ...(await listen(server)), posts };
}

const line = (event) => `${JSON.stringify(event)}\n`;

test("no agent listening: agent-unreachable within 2 s", async () => {
  const origin = await closedPort();
  const start = performance.now();
  await assert.rejects(lib.connectAgent({ origin }), (e) => {
    assert.equal(e.code, "agent-unreachable");
    assert.match(e.hint, /install or start it/);
    assert.match(e.hint, /allow this site to reach it/);
    return true;
  });
  assert.ok(performance.now() - start < 2000, `took ${performance.now() - start} ms`);
});

test("a port that accepts but never answers: agent-unreachable after the 2 s bound", async () => {
  const silent = await listen(createTcpServer(() => {}));
  try {
    const start = performance.now();
    await assert.rejects(lib.connectAgent({ origin: silent.origin }), { code: "agent-unreachable" });
    const took = performance.now() - start;
    assert.ok(took >= 1900 && took < 3000, `took ${took} ms`);
  } finally {
    silent.close();
  }
});

test("something else on the port (not the agent's /v1/info): agent-unreachable", async () => {
  const other = await listen(createServer((req, res) => res.writeHead(200, { "content-type": "text/html" }).end("<p>hi")));
  try {
    await assert.rejects(lib.connectAgent({ origin: other.origin }), { code: "agent-unreachable" });
  } finally {
    other.close();
  }
});

test("the handle: version; readers only when the agent shows them", async () => {
  const shown = await fakeAgent(() => {}, { readers: [{ name: "Virtual PCD 00 00", cardPresent: true }] });
  const hidden = await fakeAgent(() => {});
  try {
    const agent = await lib.connectAgent({ origin: `${shown.origin}/ignored/path` });
    assert.equal(agent.version, "0.9.0");
    assert.equal(agent.origin, shown.origin);
    assert.deepEqual(await agent.readers(), [{ name: "Virtual PCD 00 00", cardPresent: true }]);
    assert.equal(await (await lib.connectAgent({ origin: hidden.origin })).readers(), null);
  } finally {
    shown.close();
    hidden.close();
  }
});

test("a streamed update: request fields, callbacks in order, the result", async () => {
  const events = [
    { type: "trace", line: "Connecting to http://127.0.0.1:9/rt/test" },
    { type: "notification", code: 0, message: "Test", timeToCompletion: 0 },
    { type: "trace", line: "78 C: 00 A4 04 00 - SELECT" },
    { type: "result", status: "completed", apdus: 5, roundTrips: 3, durationMs: 42 },
  ];
  const agent = await fakeAgent(async (req, body, res) => {
    res.writeHead(200, { "content-type": "application/x-ndjson" });
    // Cut the stream mid-event and mid-character: the library must reassemble lines.
    const bytes = Buffer.from(events.map(line).join("").replace("Test", "Tést"));
    for (let i = 0; i < bytes.length; i += 7) {
      res.write(bytes.subarray(i, i + 7));
      await new Promise((r) => setImmediate(r));
    }
    res.end();
  });
  try {
    const handle = await lib.connectAgent({ origin: agent.origin });
    const seen = [];
    const result = await lib.cardUpdate(handle, "http://127.0.0.1:9/rt/test", {
      reader: "Virtual PCD 00 00",
      pinRequired: 0x81,
      pin: () => "must never be sent",
      onTrace: (t) => seen.push(`trace ${t}`),
      onNotification: (n) => seen.push(`notification ${n.code} ${n.message} ${n.timeToCompletion}`),
    });
    assert.deepEqual(agent.posts, [
      { url: "http://127.0.0.1:9/rt/test", dialect: "openscdp", reader: "Virtual PCD 00 00", pinRequired: 0x81 },
    ]);
    assert.deepEqual(seen, [
      "trace Connecting to http://127.0.0.1:9/rt/test",
      "notification 0 Tést 0",
      "trace 78 C: 00 A4 04 00 - SELECT",
    ]);
    assert.equal(result.status, "completed");
    assert.equal(result.apdus, 5);
    assert.equal(result.roundTrips, 3);
    assert.equal(result.durationMs, 42);
    assert.deepEqual(result.lastNotification, { code: 0, message: "Tést", timeToCompletion: 0 });
  } finally {
    agent.close();
  }
});

test("the agent's error event becomes a CardRelayError with its code, hint and status", async () => {
  const agent = await fakeAgent((req, body, res) => {
    res.writeHead(200, { "content-type": "application/x-ndjson" });
    res.end(line({ type: "error", code: "server-error", message: "http 500", hint: "Try again later.", status: 500 }));
  });
  try {
    const handle = await lib.connectAgent({ origin: agent.origin });
    await assert.rejects(lib.cardUpdate(handle, "http://127.0.0.1:9/rt/fault/500"), (e) => {
      assert.ok(e instanceof lib.CardRelayError);
      assert.equal(e.code, "server-error");
      assert.equal(e.status, 500);
      assert.equal(e.hint, "Try again later.");
      return true;
    });
  } finally {
    agent.close();
  }
});

test("busy and refused answers map to agent-busy and agent-refused", async () => {
  for (const [answer, code] of [
    [(res) => res.writeHead(409, { "content-type": "application/json" }).end(JSON.stringify({ code: "agent-busy", message: "busy" })), "agent-busy"],
    [(res) => res.writeHead(200, { "content-type": "application/x-ndjson" }).end(line({ type: "error", code: "agent-busy", message: "busy" })), "agent-busy"],
    [(res) => res.writeHead(403).end(), "agent-refused"],
  ]) {
    const agent = await fakeAgent((req, body, res) => answer(res));
    try {
      const handle = await lib.connectAgent({ origin: agent.origin });
      await assert.rejects(lib.cardUpdate(handle, "http://127.0.0.1:9/rt/test"), (e) => {
        assert.equal(e.code, code);
        assert.ok(e.hint, "a hint");
        return true;
      });
    } finally {
      agent.close();
    }
  }
});

test("a stream that ends without a result, or sends garbage, is a protocol error", async () => {
  for (const text of [line({ type: "trace", line: "x" }), "not json\n"]) {
    const agent = await fakeAgent((req, body, res) => res.writeHead(200).end(text));
    try {
      const handle = await lib.connectAgent({ origin: agent.origin });
      await assert.rejects(lib.cardUpdate(handle, "http://127.0.0.1:9/rt/test"), { code: "protocol" });
    } finally {
      agent.close();
    }
  }
});

test("abort mid-update closes the request (the agent's cue to cancel) and rejects with aborted", async () => {
  let closed;
  const requestClosed = new Promise((resolve) => (closed = resolve));
  const agent = await fakeAgent((req, body, res) => {
    res.writeHead(200, { "content-type": "application/x-ndjson" });
    res.write(line({ type: "notification", code: 0, message: "working", timeToCompletion: 10 }));
    res.on("close", () => closed(res.writableFinished));
  });
  try {
    const handle = await lib.connectAgent({ origin: agent.origin });
    const controller = new AbortController();
    const run = lib.cardUpdate(handle, "http://127.0.0.1:9/rt/test", {
      signal: controller.signal,
      onNotification: () => controller.abort(),
    });
    await assert.rejects(run, { code: "aborted" });
    assert.equal(await requestClosed, false, "the agent saw the request closed before it finished");
  } finally {
    agent.close();
  }
});

test("bad arguments: an agent origin that is not a URL, a seram update without a session id", async () => {
  await assert.rejects(lib.connectAgent({ origin: "not a url" }), { code: "invalid-argument" });
  const agent = await fakeAgent(() => assert.fail("no request expected"));
  try {
    const handle = await lib.connectAgent({ origin: agent.origin });
    await assert.rejects(lib.cardUpdate(handle, "http://127.0.0.1:9/seram/test", { dialect: "seram" }), { code: "invalid-argument" });
    await assert.rejects(lib.cardUpdate(handle, "http://example.com/rt/test"), { code: "insecure-url" });
    assert.deepEqual(agent.posts, []);
  } finally {
    agent.close();
  }
});

test("parseLegacyUrl reads pinrequired as the agent's daemon does, and never echoes the URL", () => {
  // agent/src/daemon.rs `pin_reference`: the trimmed value parsed as a u8 (Rust's u8 parse:
  // decimal digits, an optional '+'), any other present value the default reference.
  const cases = {
    129: 129,
    0: 0,
    "+7": 7,
    " 5 ": 5,
    "007": 7,
    255: 255,
    256: true,
    "12abc": true,
    "0x81": true,
    "-1": true,
    "1e2": true,
    yes: true,
    "": true,
  };
  for (const [given, expected] of Object.entries(cases)) {
    const legacy = `http://localhost:27001/x.png?url=%2Frt%2Ftest&pinrequired=${encodeURIComponent(given)}`;
    assert.deepEqual(lib.parseLegacyUrl(legacy), { url: "/rt/test", pinRequired: expected }, `pinrequired=${given}`);
  }
  assert.deepEqual(lib.parseLegacyUrl("/x.png?url=%2Frt%2Ftest"), { url: "/rt/test" });
  // A URL that does not parse: the error names the problem, not the URL (it may hold the
  // session id).
  const secret = "s3cr3t-session";
  assert.throws(
    () => lib.parseLegacyUrl(`http://[${secret}/x.png?url=%2Frt&sessionId=${secret}`),
    (e) => e.code === "invalid-argument" && !e.message.includes(secret),
  );
});
