// Drives the official socket.io-client from Node for tests/realtime/test_js_client.py.
// Usage: node progress_client.cjs URL TOKEN SYNC_ID
// Prints one JSON line per step: {kind: "refused"|"connected"|"ack"|"event"|"done"|"timeout"}.
"use strict";

const { io } = require(process.env.SOCKET_IO_CLIENT);

const [url, token, syncId] = process.argv.slice(2);
const FINAL = new Set(["sync-completed", "sync-failed", "sync-cancelled"]);
const print = (line) => process.stdout.write(JSON.stringify(line) + "\n");

const socket = io(`${url}/sync-progress`, { auth: { token: `Bearer ${token}` }, reconnection: false });
const timer = setTimeout(() => {
  print({ kind: "timeout" });
  process.exit(3);
}, 20000);

socket.on("connect_error", (error) => {
  print({ kind: "refused", message: error.message, data: error.data ?? null });
  clearTimeout(timer);
  socket.close();
});

socket.on("connected", async (payload) => {
  print({ kind: "connected", payload, transport: socket.io.engine.transport.name });
  const ack = await socket.timeout(5000).emitWithAck("subscribe-sync", { syncId, sinceEventId: 0 });
  print({ kind: "ack", ack });
});

socket.onAny((event, payload) => {
  if (event === "connected") return;
  print({ kind: "event", event, payload });
  if (FINAL.has(event) && payload.data.syncId === syncId) {
    print({ kind: "done" });
    clearTimeout(timer);
    socket.close();
  }
});
