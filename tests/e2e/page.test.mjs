// The demo page loads the wasm package under its strict CSP and uses the protocol core.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, launchBrowser } from "./harness.mjs";

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test("the page loads the wasm module without errors", { timeout: 30_000 }, async () => {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  await page.goto(server.url);
  await page.waitForFunction(() => /loaded$/.test(document.getElementById("status").textContent));
  const status = await page.textContent("#status");
  assert.match(status, /^card-relay \d+\.\d+\.\d+ loaded$/);
  assert.deepEqual(errors, []);
  await page.close();
});
