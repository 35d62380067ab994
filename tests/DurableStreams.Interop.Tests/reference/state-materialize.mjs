// Materialises a State-Protocol stream as the official packages do: reads it from offset -1 with the TypeScript client
// (@durable-streams/client, catch-up: every piece until up to date) and applies each message to MaterializedState
// (@durable-streams/state): change messages are applied, a `reset` control message clears the state, snapshot markers
// and anything else are counted and skipped. Prints one JSON line:
// { "messages", "changes", "resets", "snapshotMarkers", "other", "keys", "sha256", "ms", "offset" }
// where sha256 covers the state canonically ([type, key, value] sorted by type then key, as JSON) and ms is the time
// from opening the stream to the materialised state (the time a new reader takes).
//
// Usage: node state-materialize.mjs <stream URL>
import { createHash } from "node:crypto";
import { performance } from "node:perf_hooks";
import { stream } from "@durable-streams/client";
import { MaterializedState, isChangeEvent, isControlEvent } from "@durable-streams/state";

const [url] = process.argv.slice(2);
if (!url) {
  process.stderr.write("usage: node state-materialize.mjs <stream URL>\n");
  process.exit(2);
}

const started = performance.now();
const response = await stream({ url, offset: "-1", live: false });
const messages = await response.json();
const state = new MaterializedState();
const counts = { messages: messages.length, changes: 0, resets: 0, snapshotMarkers: 0, other: 0 };
// The package's guards expect a headers object; anything without one is not a State-Protocol message.
const hasHeaders = (m) => m !== null && typeof m === "object" && m.headers !== null && typeof m.headers === "object";
for (const message of messages) {
  if (!hasHeaders(message)) {
    counts.other++;
  } else if (isChangeEvent(message)) {
    state.apply(message);
    counts.changes++;
  } else if (isControlEvent(message) && message.headers.control === "reset") {
    state.clear();
    counts.resets++;
  } else if (isControlEvent(message) && message.headers.control.startsWith("snapshot-")) {
    counts.snapshotMarkers++;
  } else {
    counts.other++;
  }
}
const ms = performance.now() - started;

const entries = [];
for (const type of [...state.types].sort()) {
  const rows = state.getType(type);
  for (const key of [...rows.keys()].sort()) {
    entries.push([type, key, rows.get(key)]);
  }
}
const sha256 = createHash("sha256").update(JSON.stringify(entries)).digest("hex");
process.stdout.write(JSON.stringify({ ...counts, keys: entries.length, sha256, ms: Math.round(ms * 10) / 10, offset: response.offset ?? null }) + "\n");
