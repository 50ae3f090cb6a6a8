// Shared set-up for the end-to-end tests: starts the reference server (built by
// scripts/build.sh) on an ephemeral loopback port and launches Debian's headless Chromium.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { mkdtemp, writeFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { chromium } from "playwright-core";

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/**
 * Starts the server; resolves to { url, stop } once it printed its address. `args` are
 * extra command-line arguments, e.g. ["--allow-origin", origin] for a cross-origin server.
 */
export async function startServer({ args = [] } = {}) {
  const bin = path.join(root, "target/release/card-relay-server");
  const child = spawn(bin, ["--www", "www", "--pkg", "pkg", "--port", "0", ...args], {
    cwd: root,
    stdio: ["ignore", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout });
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("server did not start within 10 s")), 10_000);
    child.once("exit", (code) => reject(new Error(`server exited with ${code}`)));
    lines.on("line", (line) => {
      const m = /^card-relay: (http:\/\/\S+)$/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
  });
  return {
    url,
    async stop() {
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        await once(child, "exit");
      }
    },
  };
}

/** Launches headless Chromium with the flags that keep it off the closed network. */
export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-dev-shm-usage",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-quic",
      "--no-first-run",
      "--no-default-browser-check",
    ],
  });
}

/**
 * Starts the agent, `card-relay --daemon --simulator` (target/debug, built by
 * `cargo build -p card-relay-agent --bins`), on a free port, the server's origin in both its
 * origins and servers files, no terminal; resolves to { origin, stop }.
 */
export async function startSimulatorAgent(pageOrigin) {
  const dir = await mkdtemp(path.join(tmpdir(), "card-relay-agent-"));
  await writeFile(path.join(dir, "origins"), `${pageOrigin}\n`);
  await writeFile(path.join(dir, "servers"), `${pageOrigin}\n`);
  const child = spawn(
    path.join(root, "target/debug/card-relay"),
    ["--daemon", "--port", "0", "--simulator", "--origins-file", path.join(dir, "origins"), "--servers-file", path.join(dir, "servers")],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the agent did not start within 10 s")), 10_000);
    child.once("exit", (code) => reject(new Error(`the agent exited with ${code}`)));
    createInterface({ input: child.stdout }).on("line", (line) => {
      const m = /waiting on 127\.0\.0\.1:(\d+)/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
  });
  return {
    origin: `http://127.0.0.1:${port}`,
    async stop() {
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        await once(child, "exit");
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
