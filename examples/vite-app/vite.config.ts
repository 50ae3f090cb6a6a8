// Production: index.html with the card-relay package (WebUSB readers).
// `vite build --mode test`: test.html, where "card-relay" resolves to card-relay-simulator
// (the same API plus the simulated reader), so one wasm module serves both imports.
import { defineConfig } from "vite";

export default defineConfig(({ mode }) =>
  mode === "test"
    ? {
        resolve: { alias: [{ find: /^card-relay$/, replacement: "card-relay-simulator" }] },
        build: { outDir: "dist-test", rollupOptions: { input: "test.html" } },
      }
    : { build: { outDir: "dist" } },
);
