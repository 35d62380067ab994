// Starts the Node reference server (@durable-streams/server's DurableStreamTestServer, in-memory) on
// 127.0.0.1 and a port the OS picks, and prints its URL as the first line of stdout. Streams are served at the
// URL's root (http://127.0.0.1:<port>/<name>). The server stops on SIGTERM/SIGINT or when stdin closes (so it
// never outlives the test process that started it).
//
// Usage: node start-reference.mjs [--long-poll-ms <ms>]
import { DurableStreamTestServer } from "@durable-streams/server";

const args = process.argv.slice(2);
const longPollIndex = args.indexOf("--long-poll-ms");
const longPollTimeout = longPollIndex >= 0 ? Number(args[longPollIndex + 1]) : 30000;
if (!Number.isInteger(longPollTimeout) || longPollTimeout <= 0) {
  process.stderr.write("--long-poll-ms needs a positive whole number of milliseconds\n");
  process.exit(2);
}

const server = new DurableStreamTestServer({ host: "127.0.0.1", port: 0, longPollTimeout });
const url = await server.start();
process.stdout.write(url + "\n");

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  await server.stop();
  process.exit(0);
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
process.stdin.on("end", stop);
process.stdin.on("close", stop);
process.stdin.resume();
