// The part of the page that both entries share: runs one card update and shows its outcome.
import { cardUpdate, CardRelayError } from "card-relay";

const $ = (id) => document.getElementById(id);

/** Runs the update at `url` on `reader`; the outcome goes to #result, the trace to #trace. */
export async function runUpdate(reader, url) {
  const result = $("result");
  result.dataset.status = "running";
  result.textContent = "Running…";
  try {
    const outcome = await cardUpdate(reader, url, {
      onTrace: (line) => {
        $("trace").textContent += `${line}\n`;
      },
    });
    result.dataset.status = outcome.status === "completed" ? "passed" : "failed";
    result.dataset.apdus = String(outcome.apdus);
    result.textContent = `${outcome.status}: ${outcome.apdus} APDUs in ${outcome.roundTrips} round trips`;
    return outcome;
  } catch (e) {
    result.dataset.status = "failed";
    result.textContent = e instanceof CardRelayError ? `${e.code}: ${e.message}` : String(e);
    return null;
  } finally {
    await reader.close().catch(() => {});
  }
}

export function showStatus(text) {
  $("status").textContent = text;
}
