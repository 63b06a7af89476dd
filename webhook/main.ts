import { pino } from "pino";
import { createReviewHandlers, type AdmissionCatalog } from "./admission/review-handlers.ts";
import { loadConfig, type Config } from "./config.ts";
import { createUnconfiguredCatalog } from "./domain/snapshot-catalog.ts";
import { createKopiaCatalog, type KopiaCatalog } from "./kopia/snapshot-catalog.ts";
import { createGuardianServer } from "./server/guardian-server.ts";
import type { Logger } from "./server/logger.ts";
import { createMetrics } from "./server/metrics.ts";
import { createReadiness } from "./server/readiness.ts";

// The composition root: configuration → adapters → listeners, catalog and background loops.
// Nothing else in webhook/ builds a concrete adapter, reads the environment or creates a logger.

export type RunningGuardian = {
  port: number;
  stop(): Promise<void>;
};

function createCatalog(config: Config, log: Logger): { catalog: AdmissionCatalog; kopia?: KopiaCatalog } {
  if (!config.repository) {
    log.warn({}, "no Kopia repository is configured: every protected PVC is denied until one is");
    return { catalog: createUnconfiguredCatalog() };
  }
  const kopia = createKopiaCatalog({
    repositoryPath: config.repository.path,
    passwordFile: config.repository.passwordFile,
    refreshIntervalMs: config.catalog.refreshIntervalMs,
    freshnessBoundMs: config.catalog.freshnessBoundMs,
    missRefreshTimeoutMs: config.catalog.missRefreshTimeoutMs,
    onRefresh: (outcome) => {
      if (outcome.ok) log.debug({ ...outcome }, "snapshot catalog refreshed");
      else log.warn({ ...outcome }, "snapshot catalog refresh failed");
    },
    log: {
      info: (fields, message) => log.info(fields as object, message as string),
      warn: (fields, message) => log.warn(fields as object, message as string),
      error: (fields, message) => log.error(fields as object, message as string),
    },
  });
  return { catalog: kopia, kopia };
}

export async function startGuardian(config: Config, log: Logger): Promise<RunningGuardian> {
  const metrics = createMetrics();
  const readiness = createReadiness();
  const { catalog, kopia } = createCatalog(config, log);

  if (kopia) {
    readiness.register("catalog", () => {
      const health = kopia.health();
      if (health.ageMs !== null && health.ageMs <= config.catalog.freshnessBoundMs && health.lastError === null) return { ok: true };
      const age = health.ageMs === null ? "never loaded" : `last read ${Math.round(health.ageMs / 1000)}s ago`;
      return { ok: false, detail: `snapshot catalog not fresh (${age}${health.lastError ? `; ${health.lastError}` : ""})` };
    });
    await kopia.start();
  }

  const handlers = createReviewHandlers({
    policy: config.policy,
    catalog,
    deadlineMs: config.admission.deadlineMs,
  });

  const server = createGuardianServer({
    tls: { certPath: config.tls.certFile, keyPath: config.tls.keyFile, pollIntervalMs: config.tls.reloadIntervalMs },
    host: config.listen.host,
    port: config.listen.port,
    handlers,
    readiness,
    metrics,
    log,
    maxBodyBytes: config.admission.maxBodyBytes,
    // The route's own deadline is the last resort behind the handlers' internal one.
    deadlineMs: config.admission.deadlineMs + 1_000,
    drainTimeoutMs: 10_000,
  });
  const { port } = await server.start();
  log.info({ port, host: config.listen.host, repository: config.repository?.path ?? null, dormant: config.policy.dormant }, "pvc-guardian serving");

  return {
    port,
    async stop() {
      await server.stop();
      kopia?.stop();
    },
  };
}

/** `pvc-guardian serve`: runs until SIGTERM or SIGINT; exit code 1 when it cannot start. */
export async function serve(env: Readonly<Record<string, string | undefined>>): Promise<number> {
  const loaded = loadConfig(env);
  if (!loaded.ok) {
    process.stderr.write(`pvc-guardian cannot start; fix these problems:\n${loaded.problems.map((p) => `  - ${p}`).join("\n")}\n`);
    return 1;
  }
  const log = pino({ level: loaded.config.logLevel, base: { service: "pvc-guardian" } });
  let running: RunningGuardian;
  try {
    running = await startGuardian(loaded.config, log);
  } catch (error) {
    log.error({ err: error }, "pvc-guardian failed to start");
    return 1;
  }
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, "draining and stopping");
      running.stop().then(
        () => resolve(0),
        (error: unknown) => {
          log.error({ err: error }, "stop failed");
          resolve(1);
        },
      );
    };
    process.once("SIGTERM", () => onSignal("SIGTERM"));
    process.once("SIGINT", () => onSignal("SIGINT"));
  });
}
