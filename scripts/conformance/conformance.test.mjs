// Runs the official Durable Streams server conformance suite
// (@durable-streams/server-conformance-tests) against an already running server.
//
//   CONFORMANCE_TEST_URL               base URL of the server under test (required), e.g. http://127.0.0.1:4437
//   CONFORMANCE_LONG_POLL_TIMEOUT_MS   the server's long-poll timeout in milliseconds (default 500)
//
// scripts/Invoke-Conformance.ps1 starts `durable-streams serve` and sets both variables.
import { runConformanceTests } from "@durable-streams/server-conformance-tests"

const baseUrl = process.env.CONFORMANCE_TEST_URL
if (!baseUrl) {
  throw new Error("CONFORMANCE_TEST_URL is not set; use scripts/Invoke-Conformance.ps1 or set it to the server's base URL.")
}

const rawTimeout = process.env.CONFORMANCE_LONG_POLL_TIMEOUT_MS ?? "500"
const longPollTimeoutMs = Number(rawTimeout)
if (!Number.isInteger(longPollTimeoutMs) || longPollTimeoutMs <= 0) {
  throw new Error(`CONFORMANCE_LONG_POLL_TIMEOUT_MS must be a positive integer, got '${rawTimeout}'.`)
}

runConformanceTests({ baseUrl, longPollTimeoutMs, subscriptions: true })
