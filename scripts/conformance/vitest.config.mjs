import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["conformance.test.mjs"],
    // Readable progress on the console plus machine-readable counts for Invoke-Conformance.ps1.
    reporters: ["default", "json"],
    outputFile: { json: process.env.CONFORMANCE_RESULTS_FILE ?? "results/conformance.json" },
    // Several TTL cases wait about 4 s by design, close to vitest's default limit of 5 s; 30 s leaves room on a
    // loaded 2-core machine. Cases that need longer set their own timeouts.
    testTimeout: 30_000,
    hookTimeout: 30_000,
    passWithNoTests: false,
  },
})
