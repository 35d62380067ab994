// Starts the pinned Node reference server (@durable-streams/server) for scripts/bench.
// Usage: node start-reference.mjs [dataDir]
//   no dataDir -> in-memory store; with dataDir -> file-backed store (LMDB metadata + fsynced logs).
// Listens on 127.0.0.1 on a free port and prints "Reference server listening on <url>" as its first stdout line.
// Stops on SIGTERM/SIGINT.
import { DurableStreamTestServer } from "@durable-streams/server"

// The file-backed store logs its recovery with console.log/info; send all console output to stderr so that the
// URL line really is the first stdout line.
console.log = console.error
console.info = console.error
console.debug = console.error

const dataDir = process.argv[2]
const server = new DurableStreamTestServer({
  host: "127.0.0.1",
  port: 0,
  ...(dataDir ? { dataDir } : {}),
})

const url = await server.start()
process.stdout.write(`Reference server listening on ${url}\n`)

let stopping = false
const stop = async () => {
  if (stopping) return
  stopping = true
  try {
    await server.stop()
  } finally {
    process.exit(0)
  }
}
process.on("SIGTERM", stop)
process.on("SIGINT", stop)
