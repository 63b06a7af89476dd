// The webhook server assembled: certificate reloader, two Hono apps on two listeners, readiness
// checks and the self-probe. The webhook port (HTTPS) serves admission, the kubelet's probes and
// the read API; the operations port (plain HTTP, opened by the NetworkPolicy to the monitoring
// namespace only) serves /metrics and readiness in detail. main.ts builds the handlers, readiness
// and metrics and hands them in; everything started here is stopped by stop().

import { readFileSync } from "node:fs";
import { Hono } from "hono";
import { createAdmissionRoutes } from "./admission-routes.ts";
import type { ReviewHandler } from "../admission/admission-review.ts";
import { installErrorAnswers } from "./app-errors.ts";
import { startHttpListener, startHttpsListener, type HttpsListener, type TransportLimits } from "./https-listener.ts";
import type { Logger } from "../domain/logger.ts";
import type { JsonShapeLimits } from "./json-shape.ts";
import type { Metrics } from "./metrics.ts";
import { createOpsRoutes, createProbeRoutes } from "./ops-routes.ts";
import { mutatePath, validatePath } from "./route-paths.ts";
import type { Readiness } from "./readiness.ts";
import { createSelfProbe } from "./self-probe.ts";
import { createTlsReloader, type TlsReloader } from "./tls-reloader.ts";

export type GuardianServerOptions = {
  tls: { certPath: string; keyPath: string; pollIntervalMs: number };
  host: string;
  port: number;
  /** The operations port (plain HTTP); 0 picks a free one. */
  opsPort: number;
  /**
   * A PEM file with the CA that signs the API server's client certificate. When set, the
   * admission routes answer only callers that present one (see https-listener.ts).
   */
  clientCaPath?: string;
  handlers: { mutate: ReviewHandler; validate: ReviewHandler };
  readiness: Readiness;
  metrics: Metrics;
  log: Logger;
  maxBodyBytes: number;
  /** Body bytes all reviews in progress may hold together. */
  maxInFlightBodyBytes: number;
  /** Reviews in progress at once; one more is answered at once. */
  maxConcurrentReviews: number;
  /** Nesting and value-count bounds on a body, checked before it is parsed. */
  jsonShape: JsonShapeLimits;
  /** Transport bounds for both listeners. */
  transport: TransportLimits;
  /** The operations port's own connection cap, in place of transport.maxConnections. */
  opsMaxConnections: number;
  /** Per-review deadline enforced by the route, below the webhook's timeoutSeconds; none when absent. */
  deadlineMs?: number;
  /**
   * How long stop() keeps accepting with /readyz at 503 before closing the listener, so the
   * endpoints controller and kube-proxy stop sending new connections first.
   */
  drainDelayMs: number;
  /** How long in-flight requests get to finish once the listener is closed. */
  drainTimeoutMs: number;
  /** The same for the operations port, which closes last. */
  opsDrainTimeoutMs: number;
  /**
   * Further apps served on the same listener (the read API), mounted at / after ours. Hono's
   * type parameters are invariant, so an app with its own Variables only fits as Hono<any>.
   */
  extraRoutes?: readonly Hono<any, any, any>[];
  selfProbeIntervalMs: number;
  selfProbeTimeoutMs: number;
};

export type GuardianServer = {
  /** The webhook port's Hono app, for in-process requests; the routes need no TLS. */
  app: Hono;
  /** The operations port's Hono app. */
  opsApp: Hono;
  start(): Promise<{ port: number; opsPort: number }>;
  stop(): Promise<void>;
  readonly port: number | undefined;
  readonly opsPort: number | undefined;
  readonly isDraining: boolean;
};

export const readinessCheckNames = { tls: "tls", webhookPort: "webhook-port", shutdown: "shutdown" } as const;

export function createGuardianServer(options: GuardianServerOptions): GuardianServer {
  const { log, metrics, readiness } = options;
  const app = new Hono();
  // Admission requests in progress, from reaching the app to their answer (shed ones included).
  for (const [path, webhook] of [
    [mutatePath, "mutate"],
    [validatePath, "validate"],
  ] as const) {
    app.use(path, async (_c, next) => {
      const done = metrics.trackAdmission(webhook);
      try {
        await next();
      } finally {
        done();
      }
    });
  }
  app.route(
    "/",
    createAdmissionRoutes({
      mutate: options.handlers.mutate,
      validate: options.handlers.validate,
      maxBodyBytes: options.maxBodyBytes,
      maxInFlightBodyBytes: options.maxInFlightBodyBytes,
      maxConcurrentReviews: options.maxConcurrentReviews,
      jsonShape: options.jsonShape,
      deadlineMs: options.deadlineMs,
      requireClientCertificate: options.clientCaPath !== undefined,
      log,
      metrics,
    }),
  );
  app.route("/", createProbeRoutes({ readiness, log }));
  for (const routes of options.extraRoutes ?? []) app.route("/", routes);
  installErrorAnswers(app, log);
  const opsApp = createOpsRoutes({ readiness, metrics, log });
  // Read when the listener starts and at each certificate swap, so a rotated CA needs no restart.
  const clientCaPath = options.clientCaPath;
  const clientCaPem = clientCaPath === undefined ? undefined : () => readFileSync(clientCaPath, "utf8");

  let reloader: TlsReloader | undefined;
  let listener: HttpsListener | undefined;
  let opsListener: HttpsListener | undefined;
  let isDraining = false;
  let stopping: Promise<void> | undefined;
  const selfProbe = createSelfProbe({
    host: options.host,
    port: () => listener?.port,
    // The probe only runs between start() and stop(), while the reloader exists.
    currentPair: () => requireReloader().current(),
    intervalMs: options.selfProbeIntervalMs,
    timeoutMs: options.selfProbeTimeoutMs,
    log,
  });
  function requireReloader(): TlsReloader {
    if (reloader === undefined) throw new Error("serving certificate not loaded");
    return reloader;
  }

  const unregister = [
    readiness.register(readinessCheckNames.tls, () => {
      if (reloader === undefined) return { ok: false, detail: "serving certificate not loaded" };
      const notAfterMs = reloader.notAfterMs;
      return notAfterMs > Date.now() ? { ok: true } : { ok: false, detail: `serving certificate expired at ${new Date(notAfterMs).toISOString()}` };
    }),
    readiness.register(readinessCheckNames.webhookPort, () => selfProbe.check()),
    readiness.register(readinessCheckNames.shutdown, () => (isDraining ? { ok: false, detail: "server is shutting down" } : { ok: true })),
  ];

  return {
    app,
    opsApp,
    get port() {
      return listener?.port;
    },
    get opsPort() {
      return opsListener?.port;
    },
    get isDraining() {
      return isDraining;
    },
    async start() {
      if (listener !== undefined && opsListener !== undefined) return { port: listener.port, opsPort: opsListener.port };
      reloader = await createTlsReloader({
        certPath: options.tls.certPath,
        keyPath: options.tls.keyPath,
        pollIntervalMs: options.tls.pollIntervalMs,
        log,
        onReload: (pair) => {
          metrics.countTlsReload("success");
          metrics.setCertificateNotAfter(pair.notAfterMs);
        },
        onReloadFailure: () => metrics.countTlsReload("failure"),
      });
      metrics.setCertificateNotAfter(reloader.notAfterMs);
      try {
        listener = await startHttpsListener({
          fetch: app.fetch,
          tls: reloader,
          host: options.host,
          port: options.port,
          log,
          limits: options.transport,
          ...(clientCaPem !== undefined ? { clientCaPem } : {}),
        });
        opsListener = await startHttpListener({
          fetch: opsApp.fetch,
          host: options.host,
          port: options.opsPort,
          log,
          limits: { ...options.transport, maxConnections: options.opsMaxConnections },
        });
      } catch (error) {
        await listener?.close(0);
        listener = undefined;
        reloader.stop();
        throw error;
      }
      selfProbe.start();
      return { port: listener.port, opsPort: opsListener.port };
    },
    stop() {
      stopping ??= (async () => {
        isDraining = true;
        log.info({ drainDelayMs: options.drainDelayMs, drainTimeoutMs: options.drainTimeoutMs }, "webhook server draining");
        selfProbe.stop();
        if (options.drainDelayMs > 0 && listener !== undefined) {
          await new Promise((resolve) => setTimeout(resolve, options.drainDelayMs));
        }
        await listener?.close(options.drainTimeoutMs);
        // The operations port last, so /readyz?verbose and /metrics can be read through the drain.
        await opsListener?.close(options.opsDrainTimeoutMs);
        reloader?.stop();
        for (const remove of unregister) remove();
      })();
      return stopping;
    },
  };
}
