// A small consumer of the published types: `npm test` compiles it with `tsc --noEmit`, so a
// change that breaks the API's types for users fails the build.
import init, {
  CardReader,
  CardReaderEvent,
  CardRelayError,
  CCID_FILTERS,
  cardUpdate,
  checkServerUrl,
  connectAgent,
  DEFAULT_AGENT_ORIGIN,
  type AgentReader,
  type CardAgent,
  parseLegacyUrl,
  type CardRelayErrorCode,
  type CardUpdateResult,
} from "card-relay";

async function main(button: HTMLButtonElement, device: USBDevice): Promise<CardUpdateResult | null> {
  await init();
  button.disabled = true;
  const reader = await CardReader.open(device);
  reader.addEventListener("cardremoved", (ev: CardReaderEvent) => {
    const slot: number | undefined = ev.slot;
    console.log("removed", slot, reader.name, reader.exchangeLevel);
  });
  const atr: Uint8Array = await reader.powerOn({ slot: 0 });
  const response: Uint8Array = await reader.transmit(Uint8Array.of(0x00, 0x84, 0x00, 0x00, 0x08));
  console.log(atr.length, response.length, CCID_FILTERS.length, checkServerUrl("/rt/test").sameOrigin);
  const controller = new AbortController();
  const seram = await cardUpdate(reader, "/seram/test", { dialect: "seram", sessionId: "id-1" });
  console.log(seram.status);
  try {
    return await cardUpdate(reader, "/rt/test", {
      dialect: "openscdp",
      timeout: 30_000,
      approve: async (origin: string) => (origin.endsWith(".example") ? "once" : false),
      onNotification: ({ code, message, timeToCompletion }) => console.log(code, message, timeToCompletion),
      onTrace: (line: string) => console.log(line),
      pinRequired: 0x81,
      pinPad: { minDigits: 6, maxDigits: 8, timeout: 30 },
      onPinPad: ({ triesLeft }) => console.log("type the PIN on the reader", triesLeft),
      pin: async ({ triesLeft }) => (triesLeft === 0 ? null : "123456"),
      signal: controller.signal,
    });
  } catch (e) {
    if (e instanceof CardRelayError) {
      const code: CardRelayErrorCode = e.code;
      console.log(code, e.hint, e.status);
      return null;
    }
    throw e;
  } finally {
    await reader.close();
    const legacy = parseLegacyUrl("http://localhost:27001/1.png?url=https%3A%2F%2Fa.example%2Frt&sessionId=x");
    console.log(legacy.url, legacy.sessionId);
  }
}

/** The Web Smart Card API route: same CardReader, members that do not apply are null. */
async function smartCard(manager: { establishContext(): Promise<unknown> }): Promise<string> {
  const names: string[] = await CardReader.listSmartCardReaders({ smartCard: manager });
  const reader = await CardReader.openSmartCard({ smartCard: manager, reader: names[0], signal: new AbortController().signal });
  const route: "webusb" | "smartcard" = reader.route;
  const vendor: number | null = reader.vendorId;
  const level: string | null = reader.exchangeLevel;
  const code: CardRelayErrorCode = "service-unavailable";
  await reader.close();
  return `${route} ${vendor} ${level} ${code}`;
}

/** The local agent route: the same cardUpdate(), an agent in place of the reader. */
async function viaAgent(signal: AbortSignal): Promise<CardUpdateResult | null> {
  let agent: CardAgent;
  try {
    agent = await connectAgent({ origin: DEFAULT_AGENT_ORIGIN, signal });
  } catch (e) {
    if (e instanceof CardRelayError && e.code === "agent-unreachable") return null;
    throw e;
  }
  const readers: AgentReader[] | null = await agent.readers();
  const version: string = agent.version;
  console.log(version, readers?.map((r) => `${r.name} ${r.cardPresent}`));
  const result = await cardUpdate(agent, "/rt/test", {
    reader: readers?.[0]?.name,
    pinRequired: 0x81,
    onTrace: (line: string) => console.log(line),
    onNotification: ({ message }) => console.log(message),
    signal,
  });
  const codes: CardRelayErrorCode[] = ["agent-refused", "agent-busy"];
  console.log(result.route, codes);
  return result;
}

export { main, smartCard, viaAgent };
