// The approved card update servers, in the OCF client's `.card-update-servers` format: one
// `scheme://host[:port]` (the whole server) or full URL (that URL and the URLs below it) per
// line; `#` starts a comment.
import { appendFile, readFile } from "node:fs/promises";
import { homedir } from "node:os";
import path from "node:path";

/** The default list, ~/.card-update-servers. */
export function defaultServersFile() {
  return path.join(homedir(), ".card-update-servers");
}

/** The entries of the file, as URL objects; an absent file is an empty list. */
export async function readServers(file) {
  let text;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    if (e.code === "ENOENT") return [];
    throw e;
  }
  const out = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/#.*/, "").trim();
    if (!line) continue;
    try {
      out.push(new URL(line));
    } catch {
      // A line that is not a URL approves nothing.
    }
  }
  return out;
}

/** Whether `entry` approves `url`: the same origin, and for a full URL, that path or below. */
export function approves(entry, url) {
  if (entry.origin !== url.origin) return false;
  if (entry.pathname === "/" && entry.search === "") return true;
  if (url.href === entry.href) return true;
  const base = entry.href.endsWith("/") ? entry.href : `${entry.href}/`;
  return entry.search === "" && url.href.startsWith(base);
}

/** Whether the file approves `url` (a URL object). */
export async function isApproved(file, url) {
  return (await readServers(file)).some((entry) => approves(entry, url));
}

/** Adds the origin of `url` to the file. */
export async function approveAlways(file, url) {
  await appendFile(file, `${url.origin}\n`, { mode: 0o600 });
}
