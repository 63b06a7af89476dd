// The bare server's fixed answer served through pvc-guardian's own listener (startHttpsListener:
// TLS options, timeouts, connection cap, certificate reloader), so the listener's share of the
// transport's cost can be told apart from the admission route's.

import { startHttpsListener } from "../../webhook/server/https-listener.ts";
import { createTlsReloader } from "../../webhook/server/tls-reloader.ts";
import { createSilentLogger } from "../../test/support/recording-logger.ts";
import { createFixedAnswerApp } from "./fixed-answer.ts";
import { defaultSettings } from "../../test/support/default-settings.ts";

const app = createFixedAnswerApp();
const log = createSilentLogger();

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
