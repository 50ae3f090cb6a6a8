// The part of the page that both builds share: runs one card update and shows its outcome.
import { cardUpdate, CardRelayError, type CardReader, type CardUpdateResult } from "card-relay";

function element(id: string): HTMLElement {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing #${id}`);
  return el;
}

/** Runs the update at `url` on `reader`; the outcome goes to #result, the trace to #trace. */
export async function runUpdate(reader: CardReader, url: string): Promise<CardUpdateResult | null> {
  const result = element("result");
  const trace = element("trace");
  result.dataset.status = "running";
  result.textContent = "Running…";
  try {
    const outcome = await cardUpdate(reader, url, {
      onTrace: (line: string) => {
        trace.textContent += `${line}\n`;
      },
    });
    result.dataset.status = outcome.status === "completed" ? "passed" : "failed";
    result.dataset.apdus = String(outcome.apdus);
    result.textContent = `${outcome.status}: ${outcome.apdus} APDUs in ${outcome.roundTrips} round trips`;
    return outcome;
  } catch (e) {
    result.dataset.status = "failed";
    result.textContent =
      e instanceof CardRelayError ? `${e.code}: ${e.message}${e.hint ? ` (${e.hint})` : ""}` : String(e);
    return null;
  } finally {
    await reader.close().catch(() => undefined);
  }
}

export function showStatus(text: string): void {
  element("status").textContent = text;
}
