// Reads one stream with the official TypeScript client (@durable-streams/client) in catch-up mode, as its users do:
// stream({ url, offset: "-1", live: false }) then .json() or .text(). Prints one JSON line:
// { "count": messages (json) or characters (text), "bytes": UTF-8 length of the text (text only), "sha256": hex }.
// For json the hash covers the messages' compact JSON texts joined by "\n"; for text, the text's UTF-8 bytes.
//
// Usage: node ts-client-read.mjs <json|text> <stream URL>
import { createHash } from "node:crypto";
import { stream } from "@durable-streams/client";

const [mode, url] = process.argv.slice(2);
if ((mode !== "json" && mode !== "text") || !url) {
  process.stderr.write("usage: node ts-client-read.mjs <json|text> <stream URL>\n");
  process.exit(2);
}

const response = await stream({ url, offset: "-1", live: false });
const hash = createHash("sha256");
if (mode === "json") {
  const messages = await response.json();
  hash.update(messages.map((m) => JSON.stringify(m)).join("\n"));
  process.stdout.write(JSON.stringify({ count: messages.length, sha256: hash.digest("hex") }) + "\n");
} else {
  const text = await response.text();
  const bytes = Buffer.from(text, "utf8");
  hash.update(bytes);
  process.stdout.write(JSON.stringify({ count: text.length, bytes: bytes.length, sha256: hash.digest("hex") }) + "\n");
}
