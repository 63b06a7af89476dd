// The bare server's fixed answer served through pvc-guardian's own listener (startHttpsListener:
// TLS options, timeouts, connection cap, certificate reloader), so the listener's share of the
// transport's cost can be told apart from the admission route's.

import { Hono } from "hono";
import { startHttpsListener } from "../../webhook/server/https-listener.ts";
import type { Logger } from "../../webhook/domain/logger.ts";
import { createTlsReloader } from "../../webhook/server/tls-reloader.ts";
import { defaultSettings } from "../../test/support/default-settings.ts";

const fixed = {
  apiVersion: "admission.k8s.io/v1",
  kind: "AdmissionReview",
  response: { uid: "00000000-0000-0000-0000-000000000000", allowed: true },
};
const ignore = () => {};
const log: Logger = { debug: ignore, info: ignore, warn: ignore, error: ignore, child: () => log };
const app = new Hono();
const answer = async (c: import("hono").Context) => {
  await c.req.text();
  return c.json(fixed);
};
app.post("/mutate-v1-pvc", answer);
app.post("/validate-v1-pvc", answer);

const tls = await createTlsReloader({
  certPath: process.env["BENCH_TLS_CERT_FILE"] ?? "",
  keyPath: process.env["BENCH_TLS_KEY_FILE"] ?? "",
  pollIntervalMs: defaultSettings.tls.reloadIntervalMs,
  log,
});
const listener = await startHttpsListener({ fetch: app.fetch, tls, host: "127.0.0.1", port: 0, log, limits: defaultSettings.transport });
process.send?.({ port: listener.port });
process.on("message", (message) => {
  if (message !== "stop") return;
  void listener.close(1_000).then(() => {
    tls.stop();
    process.exit(0);
  });
});
