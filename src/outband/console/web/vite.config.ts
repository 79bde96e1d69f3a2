import { defineConfig } from "vite";

// The console serves dist/ itself (outband.console.web.serve); assets get hashed names under /assets/.
export default defineConfig({
  base: "/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022", // noVNC uses top-level await
    chunkSizeWarningLimit: 1024,
  },
});
