// The platform glue of card-relay's browser build: the few JavaScript helpers the wasm
// imports (wasm-bindgen `module = "/src/web/platform.js"`, shipped as one snippet of the
// package). Each helper turns a sequence of platform calls that involves no protocol decision
// into one call or one promise, so the wasm holds one awaited promise where it held an async
// state machine per call and a boundary crossing per getter (issue 18). The protocol logic
// (the CCID driver, the T=0 follow-up, the card update loop, the error classification) stays
// in Rust.

// ---- Promises (src/web/promise.rs) -------------------------------------------------------
// `settle(promise, callback, slot)` calls `callback(slot, value, fulfilled)` once the promise
// settles; `inResult` / `outResult` (for `usb` below) reduce a WebUSB transfer result
// (USBInTransferResult / USBOutTransferResult) to what the driver reads of it, in the same
// call: the status unless
// it is "ok", else the data as a Uint8Array (empty without data) or the number of bytes
// written. A result that cannot be read (not an object) rejects with the TypeError, and so
// does a "promise" that is none (a fake device's method may return anything): never a hang,
// never a throw into the wasm.

const view = (d) => (d ? new Uint8Array(d.buffer, d.byteOffset, d.byteLength) : new Uint8Array(0));
const inResult = (r) => (r.status === "ok" ? view(r.data) : String(r.status));
const outResult = (r) => (r.status === "ok" ? r.bytesWritten : String(r.status));
const on = (p, f, i, map) =>
  Promise.resolve(p).then(
    (v) => {
      let m;
      try {
        m = map(v);
      } catch (e) {
        return poll(f, i, e, false);
      }
      poll(f, i, m, true);
    },
    (e) => poll(f, i, e, false),
  );
export const settle = (p, f, i) => on(p, f, i, (v) => v);
// ---- Timer (src/web/clock.rs) -----------------------------------------------------------------
// `hold(timer, on)`: whether the clock's one timer keeps Node.js running (a Node.js Timeout's
// ref()/unref(); a browser's timer id is a number and holds nothing). The timer stays armed
// while no sleep waits (re-arming it per read cost a setTimeout per APDU), so it holds the
// process only while a sleep waits: a script ends when its update ends, not when the HTTP
// timeout that no one waits for any more would have fired.
export const hold = (t, on) => void t?.[on ? "ref" : "unref"]?.();
// ---- Tasks (src/web/promise.rs) -------------------------------------------------------------
// `soon(f, id)` calls f(id, undefined, true) in a microtask (f has the type of `settle`'s
// callback, every argument given); `task(id)` is a promise that `done(id, fulfilled, value)`
// settles (its resolvers wait in `tasks` until then).
export const soon = (f, id) => void Promise.resolve().then(() => poll(f, id, undefined, true));
const tasks = [];

// ---- Traps -------------------------------------------------------------------------------
// The browser build aborts on a panic (`-Cpanic=immediate-abort`): a WebAssembly.RuntimeError
// ("unreachable", WebAssembly JS API §4.9) without unwinding, which leaves Rust's borrows
// and task slots taken. The first one breaks the instance for good: every pending task's
// promise rejects with `internal`, the readers this module opened are released as far as
// JavaScript can (WebUSB releaseInterface and close, Web Smart Card disconnect "leave"),
// and every later entry fails with the same error without entering the wasm. `guard(hint)`
// (src/web/promise.rs, with ErrorCode::Internal's hint) hands the API layer `enter`.
let broken;
let hint;
const devices = new Map();
const connections = new Set();
/** The `internal` CardRelayError (a plain Error named so, as Rust makes them) of a trap. */
const internal = (cause) =>
  Object.assign(new Error("card-relay stopped after an internal error", { cause }), { name: "CardRelayError", code: "internal", hint });
/** `e`, or the instance's `internal` error once `e` is a trap (which breaks the instance). */
const trap = (e) => {
  if (broken || !(e instanceof WebAssembly.RuntimeError)) return broken ?? e;
  broken = internal(e);
  tasks.forEach((r) => r?.[1](broken));
  tasks.length = 0;
  clearTimeout(timer);
  for (const [d, n] of devices) call(d, "releaseInterface", n).finally(() => call(d, "close")).catch(() => {});
  for (const h of connections) call(h, "disconnect", "leave").catch(() => {});
  return broken;
};
/** `f(...a)`: a call into the wasm, never made once it is broken; a trap throws `internal`. */
const enter = (f, ...a) => {
  if (broken) throw broken;
  try {
    return f(...a);
  } catch (e) {
    throw trap(e);
  }
};
/** A callback into the wasm from a promise reaction or a timer: a trap there ends in `trap`. */
const poll = (...a) => {
  try {
    enter(...a);
  } catch {
    // Reported through the tasks' promises.
  }
};
export const guard = (h) => ((hint = h), enter);
/**
 * `setTimeout` of a callback into the wasm (src/web/clock.rs: its one armed timer, which
 * `trap` clears: in Node.js it would keep a script running until the HTTP timeout).
 */
let timer;
export const later = (f, ms) => (timer = setTimeout(poll, ms, f));
/** An "abort" listener of `s` that calls `f` in the wasm (src/web/bindings.rs); returns it. */
export const onAbort = (s, f) => {
  const g = () => poll(f);
  s.addEventListener("abort", g);
  return g;
};
export const task = (id) => new Promise((ok, no) => (tasks[id] = [ok, no]));
export const done = (id, fulfilled, value) => {
  const r = tasks[id];
  tasks[id] = undefined;
  r?.[fulfilled ? 0 : 1](value);
};

// ---- WebUSB (src/web/usb.rs) --------------------------------------------------------------
// The USBDevice is used structurally (a real device, the simulator, a Node adapter, a test
// fake). `usb(device, op, a, b, x, f, i)` makes one call and hands its promise to `f` as
// `settle` does, in one crossing of the boundary: the method `USB[op]` (the order of Rust's
// `UsbCall`), with (a) or (a, b), numbers; transferOut(a, copy of x); clearHalt("in" when a
// is 0, else "out", b); the control transfers take their setup from x, the 8-byte SETUP packet
// of USB 2.0 §9.3 (bmRequestType's type and recipient bits, bRequest, wValue, wIndex, then
// wLength for controlTransferIn and the data after the packet for controlTransferOut). A
// transfer's result is reduced by `inResult` / `outResult`.
const USB = ["open", "selectConfiguration", "claimInterface", "selectAlternateInterface", "releaseInterface", "close", "controlTransferIn", "controlTransferOut", "transferOut", "transferIn", "clearHalt"];
const word = (x, k) => x[k] | (x[k + 1] << 8);
/** A USBControlTransferParameters dictionary (WebUSB §USBControlTransferParameters). */
const setup = (x) => ({
  requestType: ["standard", "class", "vendor"][(x[0] >> 5) & 3],
  recipient: ["device", "interface", "endpoint", "other"][x[0] & 31],
  request: x[1],
  value: word(x, 2),
  index: word(x, 4),
});
const args = (op, a, b, x) =>
  op == 6 ? [setup(x), word(x, 6)]
  : op == 7 ? [setup(x), x.slice(8)]
  : op == 8 ? [a, x.slice()]
  : op == 10 ? [a ? "out" : "in", b]
  : op == 3 || op == 9 ? [a, b]
  : op == 0 || op == 5 ? []
  : [a];
export const usb = (d, op, a, b, x, f, i) => (
  // The claimed interface of each open device, for `trap` to release.
  op == 2 ? devices.set(d, a) : op == 5 && devices.delete(d),
  on(call(d, USB[op], ...args(op, a, b, x)), f, i, op == 6 || op == 9 ? inResult : op == 7 || op == 8 ? outResult : (v) => v)
);
/**
 * What the driver reads of a USBDevice at open: [vendorId, productId, productName,
 * manufacturerName, serialNumber, opened, configuration's configurationValue]; a member that
 * cannot be read is undefined.
 */
export const usbInfo = (d) => {
  try {
    return [d.vendorId, d.productId, d.productName, d.manufacturerName, d.serialNumber, d.opened, d.configuration?.configurationValue];
  } catch {
    return [];
  }
};

/** `target[name](...args)` as a promise: a missing method or a synchronous throw rejects. */
export const call = (t, name, ...a) => {
  if (name == "disconnect") connections.delete(t);
  try {
    return Promise.resolve(t[name](...a));
  } catch (e) {
    // A simulated device is the wasm itself.
    return Promise.reject(trap(e));
  }
};

// ---- fetch (src/web/fetch.rs) ------------------------------------------------------------
// `post(fetch, url, method, headers, body, credentials, signal, cookies)`: one exchange, from
// the request to the whole body. `headers` is an array [name, value, name, value, ...], never
// one joined string (a line break in a value must not forge a field); `Headers` validates:
// a name is a token, a value holds no CR, LF or NUL (RFC 9110 §5.5, Fetch standard "header
// value"), else stage 0 rejects and nothing is sent. Mode "cors", redirect "error" (an HTTP
// redirect would carry the session to a server nobody approved: a protocol-level move goes
// through X-Admin-Next-URI, which the update loop checks), no `cache` member (DESIGN.md).
// Resolves to [status, [name, value, ...], [Set-Cookie value, ...], body]; the Set-Cookie
// values only with `cookies`: getSetCookie() where the platform has it (Fetch §5.2), else
// the combined header as one value. Rejects with [stage, error, violations]: stage 0 the request,
// where the violations are the `securitypolicyviolation` events of the page seen meanwhile as
// [effectiveDirective, blockedURI, originalPolicy] (CSP Level 3 §5.3; the event is queued as
// a task and may follow the rejection, so a failed request waits a few timer turns for one),
// stage 1 the body.

/** Whether the global has no DOM (Node.js, Deno, a worker): then the client keeps cookies. */
export const ownCookies = () => typeof document == "undefined";

export const post = async (fetch, url, method, headers, body, credentials, signal, cookies) => {
  const seen = [];
  const listen =
    typeof document == "object" ? (e) => seen.push([e.effectiveDirective, e.blockedURI, e.originalPolicy]) : null;
  if (listen) addEventListener("securitypolicyviolation", listen);
  let r;
  try {
    const h = new Headers();
    for (let i = 1; i < headers.length; i += 2) h.append(headers[i - 1], headers[i]);
    const init = { method, headers: h, mode: "cors", redirect: "error", credentials, signal };
    if (body) init.body = body;
    const f = fetch ?? globalThis.fetch;
    if (typeof f != "function") throw "no fetch in this environment";
    r = await f.call(globalThis, url, init);
  } catch (e) {
    for (let i = 0; listen && i < 5 && !seen.some((v) => v[0] == "connect-src"); i++) {
      await new Promise((ok) => setTimeout(ok, 10));
    }
    throw [0, e, seen];
  } finally {
    if (listen) removeEventListener("securitypolicyviolation", listen);
  }
  const rh = r.headers;
  const set = !cookies ? [] : rh.getSetCookie ? rh.getSetCookie() : [rh.get("set-cookie")].filter((v) => v != null);
  try {
    return [r.status, [...rh].flat(), set, new Uint8Array(await r.arrayBuffer())];
  } catch (e) {
    throw [1, e];
  }
};

// ---- Web Smart Card API (src/web/smartcard.rs; WICG Web Smart Card API, index.bs) --------
// The resource manager is used structurally (any object with the IDL's shape). A helper
// rejects with [call, error]: the API method that failed and its rejection, which Rust
// classifies (src/driver/smartcard.rs); ["aborted"], ["no-reader"] and ["unknown-reader"]
// are the helpers' own outcomes.

/** The SmartCardReaderStateFlagsIn members that SmartCardReaderStateFlagsOut shares. */
const FLAGS = ["ignore", "unavailable", "empty", "present", "exclusive", "inuse", "mute", "unpowered"];
const tag = (c) => (e) => {
  throw [c, e];
};
/** The bytes of an ArrayBuffer or of a view on one (its own offset and length), else null. */
const bytes = (v) =>
  ArrayBuffer.isView(v)
    ? new Uint8Array(v.buffer, v.byteOffset, v.byteLength)
    : typeof v?.byteLength == "number"
      ? new Uint8Array(v)
      : null;
/** A SmartCardReaderStateIn: the state last seen (and its event count, once known). */
const stateIn = (readerName, currentState, currentCount) =>
  currentCount === undefined ? { readerName, currentState } : { readerName, currentState, currentCount };
const count = (out) => (typeof out?.eventCount == "number" ? out.eventCount : undefined);
/** The flags of an eventState as the next currentState. */
const flagsIn = (ev) => Object.fromEntries(FLAGS.filter((f) => ev?.[f]).map((f) => [f, true]));
const hasCard = (ev) => !!ev?.present && !ev?.empty;
/** One getStatusChange(states) that the caller's `signal` ends (aborting `own` with it). */
const change = (ctx, states, signal, own) =>
  new Promise((res, rej) => {
    const stop = () => {
      own?.abort();
      rej(["aborted"]);
    };
    if (signal?.aborted) return stop();
    signal?.addEventListener?.("abort", stop, { once: true });
    call(ctx, "getStatusChange", states, own ? { signal: own.signal } : {})
      .then(res, (e) => rej(["getStatusChange", e]))
      .finally(() => signal?.removeEventListener?.("abort", stop));
  });
/** The resource manager: `m`, else navigator.smartCard (undefined where there is none). */
export const scManager = (m) => m ?? globalThis.navigator?.smartCard;
const context = (m) => call(m, "establishContext").catch(tag("establishContext"));

/** establishContext() and listReaders(): [context, reader names]. */
export const scList = async (m) => {
  const ctx = await context(m);
  const names = await call(ctx, "listReaders").catch(tag("listReaders"));
  return [ctx, Array.isArray(names) ? names.filter((n) => typeof n == "string") : []];
};

/**
 * Opens a reader: its context and name (`name`, else the first reader with a card; without
 * one, the wait for an insertion, which `signal` ends), a second context for its events, and
 * whether it holds a card (the answer to an "unaware" state comes at once).
 */
export const scOpen = async (m, name, signal) => {
  const [ctx, names] = await scList(m);
  if (name != null && !names.includes(name)) throw ["unknown-reader"];
  if (name == null && !names.length) throw ["no-reader"];
  let states = names.map((n) => stateIn(n, { unaware: true }));
  while (name == null) {
    const out = await change(ctx, states, signal, new AbortController());
    states = names.map((n, i) => stateIn(n, flagsIn(out?.[i]?.eventState), count(out?.[i])));
    name = names.find((n, i) => hasCard(out?.[i]?.eventState));
  }
  const events = await context(m);
  const out = await change(ctx, [stateIn(name, { unaware: true })], signal);
  return [ctx, name, events, hasCard(out?.[0]?.eventState)];
};

/**
 * Follows one reader on the events' context until `signal` aborts: `cb(state)` with 0 no
 * card, 1 a card, 2 a card with eventCount moved (removed and inserted between two answers),
 * 3 the reader gone (unknown or unavailable), 4 a failed call (`cb(4, error)`). eventState
 * and eventCount go back as currentState and currentCount; an answer without a change waits
 * 250 ms (a stack that answers at once must not make this spin).
 */
export const scWatch = (ctx, name, signal, cb) => void watch(ctx, name, signal, (...a) => poll(cb, ...a)).catch(() => {});
const watch = async (ctx, name, signal, cb) => {
  let flags = { unaware: true };
  let n;
  for (;;) {
    let out;
    try {
      out = (await call(ctx, "getStatusChange", [stateIn(name, flags, n)], { signal }))?.[0];
    } catch (e) {
      return signal.aborted || cb(4, e);
    }
    if (signal.aborted) return;
    const ev = out?.eventState ?? {};
    if (ev.unknown || ev.unavailable) return cb(3);
    const next = count(out);
    const same = next === n && FLAGS.every((f) => !flags[f] === !ev[f]);
    cb(hasCard(ev) ? (n !== undefined && n !== next ? 2 : 1) : 0);
    if (same) await new Promise((r) => setTimeout(r, 250));
    flags = flagsIn(ev);
    n = next;
  }
};

/**
 * connect(reader, "shared", { preferredProtocols: ["t0", "t1"] }), status() (a failure
 * disconnects with "leave"), and with `features` (the control code) PC/SC part 10
 * GET_FEATURE_REQUEST through control() (a failure is no PIN pad). Resolves to
 * [connection, protocol (activeProtocol, else status().state), ATR, features].
 */
export const scConnect = async (ctx, name, features) => {
  const r = await call(ctx, "connect", name, "shared", { preferredProtocols: ["t0", "t1"] }).catch(tag("connect"));
  const h = r?.connection;
  connections.add(h);
  const s = await call(h, "status").catch(async (e) => {
    await call(h, "disconnect", "leave").catch(() => {});
    throw ["status", e];
  });
  const f = features === undefined ? null : await call(h, "control", features, new Uint8Array(0)).then(bytes, () => null);
  return [h, typeof r?.activeProtocol == "string" ? r.activeProtocol : s?.state, bytes(s?.answerToReset), f];
};

/** `h[name]([code,] copy of data)` (transmit, control), resolving to the answer's bytes or null. */
export const scBytes = (h, name, data, code) =>
  call(h, name, ...(code === undefined ? [] : [code]), data.slice()).then(bytes);
/** status().state of a connection. */
export const scState = (h) => call(h, "status").then((s) => s?.state);
/**
 * startTransaction(): resolves once its callback runs to [finish, done] (the resolver of the
 * callback's promise, startTransaction's own promise), or to null if that settled first.
 */
export const scBegin = (h) =>
  new Promise((res, rej) => {
    const t = [];
    const body = new Promise((r) => (t[0] = r));
    t[1] = call(h, "startTransaction", () => (res(t), body));
    t[1].then(() => res(null), rej);
  });
/** Ends a transaction of scBegin with "leave"; settles once EndTransaction ran. */
export const scEnd = (t) => (t[0]("leave"), t[1]);
/**
 * [name, responseCode, message] of a rejection (the message, else the value as a string);
 * a value whose members cannot be read gives [].
 */
export const scError = (e) => {
  try {
    return [e?.name, e?.responseCode, e?.message ?? String(e)];
  } catch {
    return [];
  }
};
/** The object `SmartCardCore.status()` resolves to. */
export const scStatus = (present, powered, atr, protocol) => ({ present, powered, atr, protocol });
