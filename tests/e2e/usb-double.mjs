// A test double shaped like a device of the Node.js `usb` package (3.1.0, the WebUSB
// object of node-usb-rs over nusb), with a simulated reader as its hardware. What it copies
// from that package, because the driver must cope with it:
// - every transfer has a timeout: a third argument, 1000 ms when the call passes none; it
//   is a duration, so 0 cancels the transfer at once; a transfer that times out rejects
//   with "transferIn error: Cancelled" and has taken no data (a packet is never cut);
// - releaseInterface, close, open, claimInterface and the getters configuration,
//   configurations, productName, manufacturerName and serialNumber borrow the native
//   device mutably: while any transfer is pending they throw synchronously ("The same
//   native value cannot be borrowed mutably while another borrow is active");
// - errors are plain Errors with messages like "transferIn error: Stall".
// `answerDelayMs` makes the reader answer late (a slow card: key generation, PIN entry).

const DEFAULT_TIMEOUT = 1000;
const BORROWED = "The same native value cannot be borrowed mutably while another borrow is active";

export class UsbPackageDouble {
  #sim;
  #pending = 0;
  #hardware = new Map(); // endpoint -> { chunks: [{ at, data }], reading: Promise | null }
  #waiters = new Set();
  #answerDelayMs;
  #lastOut = 0;
  released = [];
  closed = false;
  syncThrows = 0;

  constructor(sim, { answerDelayMs = 0 } = {}) {
    this.#sim = sim;
    this.#answerDelayMs = answerDelayMs;
  }

  get vendorId() { return this.#sim.vendorId; }
  get productId() { return this.#sim.productId; }
  get productName() { return this.#mutable(() => this.#sim.productName); }
  get manufacturerName() { return this.#mutable(() => this.#sim.manufacturerName); }
  get serialNumber() { return this.#mutable(() => this.#sim.serialNumber); }
  get opened() { return this.#sim.opened; }
  get configuration() { return this.#mutable(() => this.#sim.configuration); }
  get configurations() { return this.#mutable(() => this.#sim.configurations); }
  /** Transfers in flight right now. */
  get pending() { return this.#pending; }

  #mutable(what) {
    if (this.#pending > 0) {
      this.syncThrows += 1;
      throw new Error(BORROWED);
    }
    return what();
  }

  open() { return this.#mutable(() => this.#sim.open()); }
  claimInterface(n) { return this.#mutable(() => this.#sim.claimInterface(n)); }
  releaseInterface(n) {
    return this.#mutable(async () => {
      await this.#sim.releaseInterface(n);
      this.released.push(n);
    });
  }
  close() {
    return this.#mutable(async () => {
      await this.#sim.close();
      this.closed = true;
    });
  }
  selectConfiguration(v) { return this.#sim.selectConfiguration(v); }
  selectAlternateInterface(n, a) { return this.#sim.selectAlternateInterface(n, a); }
  clearHalt(direction, endpoint) { return this.#sim.clearHalt(direction, endpoint); }
  controlTransferIn(setup, length) { return this.#sim.controlTransferIn(setup, length); }
  controlTransferOut(setup, data) { return this.#sim.controlTransferOut(setup, data ?? new Uint8Array()); }

  async transferOut(endpoint, data, _timeout = DEFAULT_TIMEOUT) {
    this.#pending += 1;
    try {
      this.#lastOut = Date.now();
      return await this.#sim.transferOut(endpoint, data);
    } finally {
      this.#pending -= 1;
    }
  }

  /** The package's transferIn: resolves to { data, status } or rejects after `timeout`. */
  transferIn(endpoint, length, timeout = DEFAULT_TIMEOUT) {
    return this.nativeTransferIn(endpoint, timeout, length).then((data) => ({
      data: new DataView(data.buffer, data.byteOffset, data.byteLength),
      status: "ok",
    }));
  }

  /** The native call under it (its presence marks a `usb` package device). */
  async nativeTransferIn(endpoint, timeout, length) {
    this.#pending += 1;
    try {
      const deadline = Date.now() + timeout;
      for (;;) {
        const chunk = this.#take(endpoint, length);
        if (chunk) return chunk;
        const left = deadline - Date.now();
        if (left <= 0) throw new Error("transferIn error: Cancelled");
        await this.#wait(Math.min(left, this.#nextAt(endpoint)));
      }
    } finally {
      this.#pending -= 1;
    }
  }

  /** Data the hardware has for `endpoint` and may deliver now (after the answer delay). */
  #take(endpoint, length) {
    const hw = this.#endpoint(endpoint);
    const first = hw.chunks[0];
    if (!first || first.at > Date.now()) return null;
    if (first.data.length <= length) {
      hw.chunks.shift();
      return first.data;
    }
    const part = first.data.slice(0, length);
    first.data = first.data.slice(length);
    return part;
  }

  #nextAt(endpoint) {
    const first = this.#endpoint(endpoint).chunks[0];
    return first ? Math.max(1, first.at - Date.now()) : 60_000;
  }

  /** One read of the simulated hardware per endpoint, always outstanding. */
  #endpoint(endpoint) {
    let hw = this.#hardware.get(endpoint);
    if (!hw) {
      hw = { chunks: [] };
      this.#hardware.set(endpoint, hw);
      const bulk = this.#sim.configuration?.interfaces
        ?.flatMap((i) => i.alternate.endpoints)
        .some((e) => e.endpointNumber === endpoint && e.type === "bulk");
      const pump = () =>
        this.#sim.transferIn(endpoint, 64).then(
          (r) => {
            if (r.status === "ok" && r.data) {
              const data = new Uint8Array(r.data.buffer.slice(r.data.byteOffset, r.data.byteOffset + r.data.byteLength));
              hw.chunks.push({ at: bulk ? this.#lastOut + this.#answerDelayMs : 0, data });
              this.#wake();
            }
            pump();
          },
          () => {
            // Closed or unplugged: the next read asks again.
            this.#hardware.delete(endpoint);
          },
        );
      pump();
    }
    return hw;
  }

  #wait(ms) {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#waiters.add(done);
    });
  }

  #wake() {
    for (const w of [...this.#waiters]) w();
  }
}
