// The recipes for the routes around Chrome's protected class: the Isolated Web App
// (examples/iwa) served by its development server with an IWA's headers, loaded in headless
// Chromium; the Electron app (examples/electron) can only be syntax-checked here (Electron is
// not installed: scripts/test.sh runs node --check on its files).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { request } from "node:http";
import { serve } from "../../examples/iwa/serve.mjs";
import { launchBrowser } from "./harness.mjs";

let server;
let base;
let browser;

before(async () => {
  server = await serve(0);
  base = `http://127.0.0.1:${server.address().port}`;
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await new Promise((resolve) => server?.close(resolve));
});

test("the IWA manifest is at /.well-known/manifest.webmanifest with the permissions policy", async () => {
  const res = await fetch(`${base}/.well-known/manifest.webmanifest`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "application/manifest+json");
  const manifest = await res.json();
  for (const feature of ["smart-card", "usb", "usb-unrestricted"]) {
    assert.deepEqual(manifest.permissions_policy[feature], ["self"], feature);
  }
  assert.equal(manifest.id, "/");
  assert.match(manifest.version, /^\d+\.\d+\.\d+$/, "IWAs need a version");
  const icon = await fetch(new URL(manifest.icons[0].src, base));
  assert.equal(icon.status, 200);
});

test("every response is cross-origin isolated under the IWA's CSP; nothing outside the app is served", async () => {
  for (const p of ["/", "/app.js", "/pkg/card-relay.js", "/pkg/card_relay_bg.wasm"]) {
    const res = await fetch(base + p);
    assert.equal(res.status, 200, p);
    assert.equal(res.headers.get("cross-origin-opener-policy"), "same-origin", p);
    assert.equal(res.headers.get("cross-origin-embedder-policy"), "require-corp", p);
    assert.match(res.headers.get("content-security-policy"), /require-trusted-types-for 'script'/, p);
  }
  // Raw request paths (fetch would normalise the dots away).
  for (const p of ["/../../Cargo.toml", "/pkg/../../Cargo.toml", "/%2e%2e/%2e%2e/Cargo.toml", "/pkg/..%2f..%2fCargo.toml"]) {
    const status = await new Promise((resolve, reject) => {
      request({ host: "127.0.0.1", port: server.address().port, path: p }, (res) => {
        res.resume();
        resolve(res.statusCode);
      }).on("error", reject).end();
    });
    assert.equal(status, 404, p);
  }
});

test("the app runs in Chromium: cross-origin isolated, the package loads, no navigator.smartCard here", { timeout: 30_000 }, async () => {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  await page.goto(`${base}/`);
  await page.waitForFunction(() => document.getElementById("status").textContent !== "");
  const status = await page.textContent("#status");
  assert.match(status, /Web Smart Card API: not available here; cross-origin isolated: true/);
  assert.deepEqual(errors, []);
  await page.close();
});
