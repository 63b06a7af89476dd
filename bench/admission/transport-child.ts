// The transport alone: createGuardianServer (TLS reloader, admission and ops routes, metrics, one
// pino line per review) around handlers that answer a fixed outcome. Between the bare floor and the
// full server, it shows what this layer costs apart from the admission decision.

import { pino } from "pino";
import { allowed, type ReviewHandler } from "../../webhook/admission/admission-review.ts";
import { createGuardianServer } from "../../webhook/server/guardian-server.ts";
import { createMetrics } from "../../webhook/server/metrics.ts";
import { createReadiness } from "../../webhook/server/readiness.ts";
import { defaultSettings, guardianServerSettings } from "../../test/support/default-settings.ts";

const answer: ReviewHandler = async () => allowed("fixed");

const server = createGuardianServer({
  ...guardianServerSettings,
  tls: {
    certPath: process.env["BENCH_TLS_CERT_FILE"] ?? "",
    keyPath: process.env["BENCH_TLS_KEY_FILE"] ?? "",
    pollIntervalMs: defaultSettings.tls.reloadIntervalMs,
  },
  host: "127.0.0.1",
  port: 0,
  opsPort: 0,
  handlers: { mutate: answer, validate: answer },
  readiness: createReadiness(),
  metrics: createMetrics({ collectProcessMetrics: true }),
  log: pino({ level: "info", base: { service: "pvc-guardian" } }),
  maxBodyBytes: 7 * 1024 * 1024,
  deadlineMs: 9_000,
  drainDelayMs: 0,
  drainTimeoutMs: 5_000,
});
const { port } = await server.start();
process.send?.({ port });
process.on("message", (message) => {
  if (message === "stop") void server.stop().then(() => process.exit(0));
});
