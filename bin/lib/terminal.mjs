// Questions on the controlling terminal: the server approval and the PIN (without echo).
import { createInterface } from "node:readline";

/** Whether there is a user at a terminal to ask. */
export function interactive() {
  return Boolean(process.stdin.isTTY && process.stderr.isTTY);
}

/** Asks one line on stderr, reading stdin; resolves to the answer ("" at end of input). */
export function ask(question) {
  return new Promise((resolve) => {
    const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: interactive() });
    let answered = false;
    rl.question(question, (answer) => {
      answered = true;
      rl.close();
      resolve(answer.trim());
    });
    rl.once("close", () => {
      if (!answered) resolve("");
    });
  });
}

/**
 * Reads a secret from the terminal without echo (raw mode; Enter ends, Backspace deletes,
 * Ctrl-C or Ctrl-D cancels to null). Without a terminal, reads one line of stdin, so that
 * `echo 123456 | card-relay -p <url>` works.
 */
export function askSecret(question) {
  if (!process.stdin.isTTY) return ask("");
  return new Promise((resolve) => {
    const input = process.stdin;
    let secret = "";
    process.stderr.write(question);
    input.setRawMode(true);
    input.resume();
    input.setEncoding("utf8");
    const finish = (value) => {
      input.removeListener("data", onData);
      input.setRawMode(false);
      input.pause();
      process.stderr.write("\n");
      resolve(value);
    };
    const onData = (chunk) => {
      for (const ch of chunk) {
        if (ch === "\r" || ch === "\n") return finish(secret);
        if (ch === "\u0003" || ch === "\u0004") return finish(null);
        if (ch === "\u007f" || ch === "\b") secret = secret.slice(0, -1);
        else if (ch >= " ") secret += ch;
      }
    };
    input.on("data", onData);
  });
}
