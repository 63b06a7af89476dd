// The transport floor: Hono on @hono/node-server over HTTPS with the same certificate, reading the
// body and answering a fixed AdmissionReview, with no parsing, decision or logging.

import { createAdaptorServer } from "@hono/node-server";
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { createFixedAnswerApp } from "./fixed-answer.ts";

const server = createAdaptorServer({
  fetch: createFixedAnswerApp().fetch,
  createServer,
  serverOptions: {
    cert: readFileSync(process.env["BENCH_TLS_CERT_FILE"] ?? ""),
    key: readFileSync(process.env["BENCH_TLS_KEY_FILE"] ?? ""),
    minVersion: "TLSv1.2",
  },
}) as Server;
server.listen(0, "127.0.0.1", () => {
  process.send?.({ port: (server.address() as AddressInfo).port });
});
process.on("message", (message) => {
  if (message !== "stop") return;
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
