#!/usr/bin/env node
// Development server for the Isolated Web App: serves this directory and the production
// package (../../pkg, built by scripts/build.sh) at /pkg/, with the headers an IWA gets:
// cross-origin isolation (COOP same-origin, COEP require-corp, CORP same-origin) and the
// IWA's Content Security Policy, so what works here works in the installed app. Chrome's
// "Install IWA via Dev Mode Proxy" (chrome://web-app-internals) points at this server.
//
//   node examples/iwa/serve.mjs [port]      (default 5193; 0 picks a free port)
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const roots = [
  ["/pkg/", path.resolve(here, "../../pkg")],
  ["/", here],
];
const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".wasm": "application/wasm",
  ".json": "application/json",
  ".webmanifest": "application/manifest+json",
  ".svg": "image/svg+xml",
  ".ts": "text/plain; charset=utf-8",
};
// The Content Security Policy Chrome applies to every Isolated Web App.
export const IWA_CSP = [
  "base-uri 'none'",
  "default-src 'self'",
  "object-src 'none'",
  "frame-src 'self' https: blob: data:",
  "connect-src 'self' https: wss: blob: data:",
  "script-src 'self' 'wasm-unsafe-eval'",
  "img-src 'self' https: blob: data:",
  "media-src 'self' https: blob: data:",
  "font-src 'self' blob: data:",
  "style-src 'self' 'unsafe-inline'",
  "require-trusted-types-for 'script'",
].join("; ");
export const HEADERS = {
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Embedder-Policy": "require-corp",
  "Cross-Origin-Resource-Policy": "same-origin",
  "Content-Security-Policy": IWA_CSP,
  "X-Content-Type-Options": "nosniff",
};

function resolve(urlPath) {
  for (const [prefix, dir] of roots) {
    if (!urlPath.startsWith(prefix)) continue;
    const rest = urlPath.slice(prefix.length) || "index.html";
    const file = path.resolve(dir, rest);
    // Nothing outside the served directories.
    if (file !== dir && !file.startsWith(dir + path.sep)) return null;
    return file;
  }
  return null;
}

export function serve(port = 5193) {
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, "http://localhost");
    const file = req.method === "GET" || req.method === "HEAD" ? resolve(decodeURIComponent(url.pathname)) : null;
    let body = null;
    if (file) body = await readFile(file).catch(() => null);
    if (!body) {
      res.writeHead(req.method === "GET" || req.method === "HEAD" ? 404 : 405, { ...HEADERS, "Content-Type": "text/plain" });
      res.end("not found\n");
      return;
    }
    const type = TYPES[path.extname(file)] ?? "application/octet-stream";
    res.writeHead(200, { ...HEADERS, "Content-Type": type, "Cache-Control": "no-store" });
    res.end(req.method === "HEAD" ? undefined : body);
  });
  return new Promise((resolveListen) => {
    server.listen(port, "127.0.0.1", () => resolveListen(server));
  });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const port = Number(process.argv[2] ?? process.env.PORT ?? 5193);
  const server = await serve(port);
  console.log(`card-relay iwa: http://localhost:${server.address().port}/`);
}
