// The webhook server assembled: certificate reloader, Hono app (admission and ops routes), HTTPS
// listener, readiness checks and the self-probe. main.ts builds the handlers, readiness and metrics
// and hands them in; everything started here is stopped by stop().

import { Hono } from 'hono';
import { createAdmissionRoutes } from './admission-routes.ts';
import type { ReviewHandler } from '../admission/admission-review.ts';
import { startHttpsListener, type HttpsListener } from './https-listener.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';
import { createOpsRoutes } from './ops-routes.ts';
import type { Readiness } from './readiness.ts';
import { createSelfProbe } from './self-probe.ts';
import { createTlsReloader, type TlsReloader } from './tls-reloader.ts';

export type GuardianServerOptions = {
  tls: { certPath: string; keyPath: string; pollIntervalMs: number };
  host: string;
  port: number;
  handlers: { mutate: ReviewHandler; validate: ReviewHandler };
  readiness: Readiness;
  metrics: Metrics;
  log: Logger;
  maxBodyBytes: number;
  /** Per-review deadline enforced by the route, below the webhook's timeoutSeconds. */
  deadlineMs?: number;
  /**
   * How long stop() keeps accepting with /readyz at 503 before closing the listener, so the
   * endpoints controller and kube-proxy stop sending new connections first.
   */
  drainDelayMs?: number;
  /** How long in-flight requests get to finish once the listener is closed. */
  drainTimeoutMs: number;
  /**
   * Idle keep-alive timeout. The API server's client keeps idle connections to webhooks for 90 s;
   * if we closed them first, a review sent on a connection we were closing at that moment would
   * fail and fall to the failurePolicy. So the client must be the one to close: default 120 s.
   */
  keepAliveTimeoutMs?: number;
  /**
   * Further apps served on the same listener (the read API), mounted at / after ours. Hono's
   * type parameters are invariant, so an app with its own Variables only fits as Hono<any>.
   */
  extraRoutes?: readonly Hono<any, any, any>[];
  selfProbeIntervalMs?: number;
  selfProbeTimeoutMs?: number;
};

export type GuardianServer = {
  /** The Hono app, for in-process requests; the routes need no TLS. */
  app: Hono;
  start(): Promise<{ port: number }>;
  stop(): Promise<void>;
  readonly port: number | undefined;
  readonly isDraining: boolean;
};

const defaultKeepAliveTimeoutMs = 120_000;

export const readinessCheckNames = { tls: 'tls', webhookPort: 'webhook-port', shutdown: 'shutdown' } as const;

export function createGuardianServer(options: GuardianServerOptions): GuardianServer {
  const { log, metrics, readiness } = options;
  const app = new Hono();
  app.route(
    '/',
    createAdmissionRoutes({
      mutate: options.handlers.mutate,
      validate: options.handlers.validate,
      maxBodyBytes: options.maxBodyBytes,
      deadlineMs: options.deadlineMs,
      log,
      metrics,
    }),
  );
  app.route('/', createOpsRoutes({ readiness, metrics }));
  for (const routes of options.extraRoutes ?? []) app.route('/', routes);

  let reloader: TlsReloader | undefined;
  let listener: HttpsListener | undefined;
  let isDraining = false;
  let stopping: Promise<void> | undefined;
  const selfProbe = createSelfProbe({
    host: options.host,
    port: () => listener?.port,
    // The probe only runs between start() and stop(), while the reloader exists.
    currentPair: () => requireReloader().current(),
    intervalMs: options.selfProbeIntervalMs ?? 10_000,
    timeoutMs: options.selfProbeTimeoutMs ?? 2_000,
    log,
  });
  function requireReloader(): TlsReloader {
    if (reloader === undefined) throw new Error('serving certificate not loaded');
    return reloader;
  }

  const unregister = [
    readiness.register(readinessCheckNames.tls, () => {
      if (reloader === undefined) return { ok: false, detail: 'serving certificate not loaded' };
      const notAfterMs = reloader.notAfterMs;
      return notAfterMs > Date.now() ? { ok: true } : { ok: false, detail: `serving certificate expired at ${new Date(notAfterMs).toISOString()}` };
    }),
    readiness.register(readinessCheckNames.webhookPort, () => selfProbe.check()),
    readiness.register(readinessCheckNames.shutdown, () => (isDraining ? { ok: false, detail: 'server is shutting down' } : { ok: true })),
  ];

  return {
    app,
    get port() {
      return listener?.port;
    },
    get isDraining() {
      return isDraining;
    },
    async start() {
      if (listener !== undefined) return { port: listener.port };
      reloader = await createTlsReloader({
        certPath: options.tls.certPath,
        keyPath: options.tls.keyPath,
        pollIntervalMs: options.tls.pollIntervalMs,
        log,
        onReload: (pair) => {
          metrics.countTlsReload('success');
          metrics.setCertificateNotAfter(pair.notAfterMs);
        },
        onReloadFailure: () => metrics.countTlsReload('failure'),
      });
      metrics.setCertificateNotAfter(reloader.notAfterMs);
      try {
        listener = await startHttpsListener({
          fetch: app.fetch,
          tls: reloader,
          host: options.host,
          port: options.port,
          log,
          keepAliveTimeoutMs: options.keepAliveTimeoutMs ?? defaultKeepAliveTimeoutMs,
        });
      } catch (error) {
        reloader.stop();
        throw error;
      }
      selfProbe.start();
      return { port: listener.port };
    },
    stop() {
      stopping ??= (async () => {
        isDraining = true;
        log.info({ drainDelayMs: options.drainDelayMs ?? 0, drainTimeoutMs: options.drainTimeoutMs }, 'webhook server draining');
        selfProbe.stop();
        if (options.drainDelayMs !== undefined && options.drainDelayMs > 0 && listener !== undefined) {
          await new Promise((resolve) => setTimeout(resolve, options.drainDelayMs));
        }
        await listener?.close(options.drainTimeoutMs);
        reloader?.stop();
        for (const remove of unregister) remove();
      })();
      return stopping;
    },
  };
}
