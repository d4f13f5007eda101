import { defineConfig } from "vite";

// The app loads the built files from the binary; no dev server is needed.
export default defineConfig({
  clearScreen: false,
  build: { target: "safari13", outDir: "dist", emptyOutDir: true },
});
