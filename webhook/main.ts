import { pino } from "pino";
import { createReviewHandlers, type AdmissionCatalog } from "./admission/review-handlers.ts";
import { loadConfig, type Config } from "./config.ts";
import { createUnconfiguredCatalog } from "./domain/snapshot-catalog.ts";
import { createKopiaCatalog, type KopiaCatalog } from "./kopia/snapshot-catalog.ts";
import { createGuardianServer } from "./server/guardian-server.ts";
import type { Logger } from "./server/logger.ts";
import { createMetrics } from "./server/metrics.ts";
import { createReadiness } from "./server/readiness.ts";
import { createKubeClients, type KubeClients } from "./kube/kube-client.ts";
import { createPvcEventRecorder } from "./kube/pvc-events.ts";
import { createVolSyncSupport, type VolSyncSupport } from "./kube/volsync-capabilities.ts";
import { createAdmissionGenerator } from "./reconciler/admission-generator.ts";
import { createBackgroundControllers, type BackgroundControllers } from "./reconciler/background-controllers.ts";
import type { BackupObjectGenerator } from "./admission/generation-port.ts";
import type { Metrics } from "./server/metrics.ts";
import { createApiServerKeySource, createServiceAccountTokenVerifier } from "./server/bearer-auth.ts";
import { createClusterAuditSource } from "./server/cluster-audit-source.ts";
import { createReadApiRoutes } from "./server/read-api-routes.ts";
import { scheduleIntervalMs } from "./server/backup-audit.ts";
import { resolveSchedule } from "./domain/backup-schedule.ts";
import { backupIdentity } from "./domain/kopia-identity.ts";
import { newestCompleteSnapshot } from "./domain/restore-decision.ts";
import { generatedNames } from "./domain/resource-names.ts";
import type { ProtectedPvc } from "./reconciler/reconcile-plan.ts";

// The composition root: configuration → adapters → listeners, catalog and background loops.
// Nothing else in webhook/ builds a concrete adapter, reads the environment or creates a logger.

export type RunningGuardian = {
  port: number;
  opsPort: number;
  stop(): Promise<void>;
};

function createCatalog(config: Config, log: Logger, metrics: Metrics): { catalog: AdmissionCatalog; kopia?: KopiaCatalog } {
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
      metrics.observeCatalogRefresh(outcome);
      if (outcome.ok) log.debug({ ...outcome }, "snapshot catalog refreshed");
      else log.warn({ ...outcome }, "snapshot catalog refresh failed");
    },
    log: {
      info: (fields, message) => log.info(fields as object, message as string),
      warn: (fields, message) => log.warn(fields as object, message as string),
      error: (fields, message) => log.error(fields as object, message as string),
    },
  });
  metrics.trackCatalogAge(() => {
    const ageMs = kopia.health().ageMs;
    return ageMs === null ? null : ageMs / 1000;
  });
  return { catalog: kopia, kopia };
}

type KubernetesParts = { clients: KubeClients; generator: BackupObjectGenerator; controllers: BackgroundControllers; volSync: VolSyncSupport };

/**
 * The backup-age gauge, read at scrape from the leader's last reconcile inventory and the
 * catalog: the newest complete snapshot per protected PVC, or, before the first one, when it
 * became due. Non-leaders report nothing, so each PVC has one series.
 */
function trackBackupAges(config: Config, metrics: Metrics, catalog: AdmissionCatalog, inventory: () => readonly ProtectedPvc[]): void {
  const intervals: Record<string, number> = {};
  for (const [tier, { schedule }] of Object.entries(config.policy.tiers)) {
    const resolved = resolveSchedule(schedule, "interval/probe");
    const intervalMs = resolved.ok ? scheduleIntervalMs(resolved.schedule, Date.now()) : undefined;
    if (intervalMs !== undefined) intervals[tier] = intervalMs / 1000;
  }
  metrics.setTierIntervals(intervals);
  metrics.trackBackupAges(() => {
    const nowMs = Date.now();
    return inventory().flatMap((pvc) => {
      const identity = backupIdentity(generatedNames(pvc.name).replicationDestination, pvc.namespace).written.key;
      const lookup = catalog.lookup(identity, nowMs);
      // An unreadable catalog has its own alert; guessing an age here would only add noise.
      if (!lookup.readable) return [];
      const newestMs = newestCompleteSnapshot(lookup.snapshots)?.startTimeMs;
      const timestampMs = newestMs ?? (pvc.createdAtMs === undefined ? undefined : pvc.createdAtMs + config.policy.firstBackupDelayMs);
      return timestampMs === undefined ? [] : [{ namespace: pvc.namespace, pvc: pvc.name, tier: pvc.tier, timestampMs }];
    });
  });
}

/** The API-facing half: generation on admission, and the leader-elected reconciler and sweeper. */
function createKubernetesParts(config: Config, log: Logger, metrics: Metrics, onInventory: (inventory: ProtectedPvc[]) => void): KubernetesParts | undefined {
  if (config.kubernetes.mode === "off") {
    log.warn({}, "Kubernetes access is off: no backup objects are generated and nothing is reconciled or swept");
    return undefined;
  }
  // In the cluster, the API server's address comes from the variables the kubelet sets.
  const clients = createKubeClients(config.kubernetes.kubeconfigPath ? { kubeconfigPath: config.kubernetes.kubeconfigPath } : { env: process.env });
  const events = createPvcEventRecorder(
    clients.objects,
    { reportingController: "pvc-guardian.io/pvc-guardian", reportingInstance: config.podName },
    (event, error) => log.debug({ reason: event.reason, pvc: `${event.namespace}/${event.pvcName}`, err: (error as Error).message }, "event not recorded"),
  );
  const volSync = createVolSyncSupport({ objects: clients.objects, policy: config.policy, log });
  const generator = createAdmissionGenerator({
    objects: clients.objects,
    policy: config.policy,
    log,
    metrics: metrics.reconciler,
    events,
    adoptKyverno: config.reconcile.adoptKyverno,
    policySupport: volSync.support,
  });
  const controllers = createBackgroundControllers({
    objects: clients.objects,
    policy: config.policy,
    log,
    metrics: metrics.reconciler,
    events,
    namespace: config.namespace,
    identity: config.podName,
    leaseDurationMs: config.reconcile.leaseDurationMs,
    reconcileIntervalMs: config.reconcile.intervalMs,
    sweepSchedule: config.sweep.schedule,
    sweepGracePeriodMs: config.sweep.gracePeriodMs,
    sweepDryRun: config.sweep.dryRun,
    adoptKyverno: config.reconcile.adoptKyverno,
    policySupport: volSync.support,
    writeConcurrency: config.reconcile.writeConcurrency,
    onReconciled: (report) => {
      if (report.outcome !== "error") onInventory(report.inventory);
    },
  });
  log.info({ server: clients.server }, "using the Kubernetes API");
  return { clients, generator, controllers, volSync };
}

export async function startGuardian(config: Config, log: Logger): Promise<RunningGuardian> {
  const metrics = createMetrics();
  const readiness = createReadiness();
  const { catalog, kopia } = createCatalog(config, log, metrics);
  let inventory: readonly ProtectedPvc[] = [];
  const kubernetes = createKubernetesParts(config, log, metrics, (latest) => {
    inventory = latest;
  });
  trackBackupAges(config, metrics, catalog, () => (kubernetes?.controllers.isLeader() ? inventory : []));

  if (kopia) {
    // Informational: a replica with an unreadable repository still answers (it denies protected
    // PVCs with the reason), and out of the Service it would leave only "no endpoints available".
    readiness.register("catalog", () => {
      const health = kopia.health();
      if (health.ageMs !== null && health.ageMs <= config.catalog.freshnessBoundMs && health.lastError === null) return { ok: true };
      const age = health.ageMs === null ? "never loaded" : `last read ${Math.round(health.ageMs / 1000)}s ago`;
      return { ok: false, detail: `snapshot catalog not fresh (${age}${health.lastError ? `; ${health.lastError}` : ""})` };
    }, { informational: true });
    await kopia.start();
  }

  if (kubernetes) {
    const { volSync } = kubernetes;
    readiness.register("volsync-crds", () => {
      const support = volSync.support();
      return support.supported ? { ok: true } : { ok: false, detail: support.problem };
    });
    // Bounded: capabilities that cannot be read count as supported and are read again later.
    await volSync.start();
  }

  const handlers = createReviewHandlers({
    policy: config.policy,
    catalog,
    deadlineMs: config.admission.deadlineMs,
    ...(kubernetes ? { generator: kubernetes.generator } : {}),
    onGenerationFailure: (path) => metrics.countGenerationFailure(path),
  });

  // The read API verifies ServiceAccount tokens against the cluster's keys, so it needs API access.
  const readApi = kubernetes
    ? createReadApiRoutes({
        verifier: createServiceAccountTokenVerifier({
          keys: createApiServerKeySource((path, accept, signal) => kubernetes.clients.getRaw(path, accept, signal)),
          audience: config.readApi.audience,
        }),
        allowedServiceAccounts: config.readApi.allowedServiceAccounts,
        catalog,
        audit: createClusterAuditSource(kubernetes.clients.objects),
        policy: config.policy,
        log,
      })
    : undefined;

  const server = createGuardianServer({
    tls: { certPath: config.tls.certFile, keyPath: config.tls.keyFile, pollIntervalMs: config.tls.reloadIntervalMs },
    host: config.listen.host,
    port: config.listen.port,
    opsPort: config.listen.opsPort,
    ...(config.tls.clientCaFile !== undefined ? { clientCaPath: config.tls.clientCaFile } : {}),
    handlers,
    readiness,
    metrics,
    log,
    maxBodyBytes: config.admission.maxBodyBytes,
    maxInFlightBodyBytes: config.admission.maxInFlightBodyBytes,
    maxConcurrentReviews: config.admission.maxConcurrentReviews,
    transport: config.transport,
    // The route's own deadline is the last resort behind the handlers' internal one.
    deadlineMs: config.admission.deadlineMs + 1_000,
    drainDelayMs: config.shutdown.drainDelayMs,
    drainTimeoutMs: config.shutdown.drainTimeoutMs,
    ...(readApi ? { extraRoutes: [readApi] } : {}),
  });
  const { port, opsPort } = await server.start();
  kubernetes?.controllers.start();
  log.info({ port, opsPort, host: config.listen.host, repository: config.repository?.path ?? null, dormant: config.policy.dormant }, "pvc-guardian serving");

  return {
    port,
    opsPort,
    async stop() {
      await server.stop();
      await kubernetes?.controllers.stop();
      await kubernetes?.volSync.stop();
      kubernetes?.clients.close();
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
