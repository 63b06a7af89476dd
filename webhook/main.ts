import { pino, stdTimeFunctions, type DestinationStream, type Logger as PinoLogger } from "pino";
import { createReviewHandlers, type AdmissionCatalog, type CatalogChoice } from "./admission/review-handlers.ts";
import { loadConfig, type Config, type S3RepositoryConfig } from "./config.ts";
import { DEFAULT_REPOSITORY_NAME, policyForNamespace, usesNamespaceSelectors } from "./domain/policy.ts";
import { EVENT_REPORTING_CONTROLLER, LEADER_LEASE_NAME } from "./domain/wire-names.ts";
import { createNamespaceLabels, type NamespaceLabels } from "./kube/namespace-labels.ts";
import { createUnconfiguredCatalog } from "./domain/snapshot-catalog.ts";
import { createKopiaCatalog, type KopiaCatalog } from "./kopia/snapshot-catalog.ts";
import { createS3RepositoryStore, credentialsFromSecretDirectory } from "./kopia/s3-repository-settings.ts";
import { createGuardianServer } from "./server/guardian-server.ts";
import type { Logger } from "./domain/logger.ts";
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
import { scheduleIntervalMs } from "./domain/backup-schedule.ts";
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

type RepositoryLocation = { name: string; path: string; passwordFile: string; s3?: S3RepositoryConfig };
type RepositoryCatalog = { name: string; catalog: AdmissionCatalog; kopia?: KopiaCatalog };

function createCatalog(config: Config, location: RepositoryLocation | undefined, log: Logger, metrics: Metrics): RepositoryCatalog {
  const name = location?.name ?? DEFAULT_REPOSITORY_NAME;
  if (!location) {
    log.warn({}, "no Kopia repository is configured: every protected PVC is denied until one is");
    return { name, catalog: createUnconfiguredCatalog() };
  }
  const s3 = location.s3;
  const kopia = createKopiaCatalog({
    repositoryPath: location.path,
    passwordFile: location.passwordFile,
    ...(s3
      ? { store: createS3RepositoryStore(s3.settings, credentialsFromSecretDirectory(s3.credentialsDir), { requestTimeoutMs: s3.requestTimeoutMs }) }
      : {}),
    refreshIntervalMs: config.catalog.refreshIntervalMs,
    freshnessBoundMs: config.catalog.freshnessBoundMs,
    missRefreshTimeoutMs: config.catalog.missRefreshTimeoutMs,
    onRefresh: (outcome) => metrics.observeCatalogRefresh(outcome, name),
    log: log.child({ repository: name }),
  });
  metrics.trackCatalogAge(() => {
    const ageMs = kopia.health().ageMs;
    return ageMs === null ? null : ageMs / 1000;
  }, name);
  return { name, catalog: kopia, kopia };
}

/** One catalog per repository: the default one first, then the policy's others. */
function createCatalogs(config: Config, log: Logger, metrics: Metrics): RepositoryCatalog[] {
  const defaultLocation = config.repository ? { name: DEFAULT_REPOSITORY_NAME, ...config.repository } : undefined;
  return [
    createCatalog(config, defaultLocation, log, metrics),
    ...config.additionalRepositories.map((location) => createCatalog(config, location, log, metrics)),
  ];
}

/**
 * Routes a namespace to its repository's policy and catalog. With one repository the policy
 * itself serves every namespace and no namespace labels are read.
 */
function createRepositoryRouter(
  config: Config,
  catalogs: readonly RepositoryCatalog[],
  labelsOf: (namespace: string) => Readonly<Record<string, string>> | undefined,
) {
  const byName = new Map(catalogs.map((entry) => [entry.name, entry]));
  const policyFor = (namespace: string) => policyForNamespace(config.policy, namespace, labelsOf(namespace));
  return {
    isMultiple: catalogs.length > 1,
    policyFor,
    catalogFor(namespace: string): CatalogChoice {
      const chosen = policyFor(namespace);
      if (!chosen.ok) return chosen;
      const entry = byName.get(chosen.policy.repositoryName);
      if (!entry) return { ok: false, reason: `repository ${chosen.policy.repositoryName} has no catalog` };
      return { ok: true, repository: entry.name, catalog: entry.catalog };
    },
    repositoryOf(namespace: string): string | null {
      const chosen = policyFor(namespace);
      return chosen.ok ? chosen.policy.repositoryName : null;
    },
  };
}

type KubernetesParts = { clients: KubeClients; generator: BackupObjectGenerator; controllers: BackgroundControllers; volSync: VolSyncSupport };

/**
 * The backup-age gauge, read at scrape from the leader's last reconcile inventory and the
 * catalog: the newest complete snapshot per protected PVC, or, before the first one, when it
 * became due. Non-leaders report nothing, so each PVC has one series.
 */
function trackBackupAges(
  config: Config,
  metrics: Metrics,
  catalogOf: (namespace: string) => AdmissionCatalog | undefined,
  inventory: () => readonly ProtectedPvc[],
): void {
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
      const lookup = catalogOf(pvc.namespace)?.lookup(identity, nowMs);
      // An unreadable catalog has its own alert; guessing an age here would only add noise.
      if (!lookup?.readable) return [];
      const newestMs = newestCompleteSnapshot(lookup.snapshots)?.startTimeMs;
      const timestampMs = newestMs ?? (pvc.createdAtMs === undefined ? undefined : pvc.createdAtMs + config.policy.firstBackupDelayMs);
      return timestampMs === undefined ? [] : [{ namespace: pvc.namespace, pvc: pvc.name, tier: pvc.tier, timestampMs }];
    });
  });
}

/** The API-facing half: generation on admission, and the leader-elected reconciler and sweeper. */
type RepositoryRouter = ReturnType<typeof createRepositoryRouter>;

function createKubernetesParts(
  config: Config,
  log: Logger,
  metrics: Metrics,
  onInventory: (inventory: ProtectedPvc[]) => void,
  router: RepositoryRouter,
): KubernetesParts | undefined {
  if (config.kubernetes.mode === "off") {
    log.warn({}, "Kubernetes access is off: no backup objects are generated and nothing is reconciled or swept");
    return undefined;
  }
  // In the cluster, the API server's address comes from the variables the kubelet sets.
  const clients = createKubeClients({
    ...(config.kubernetes.kubeconfigPath ? { kubeconfigPath: config.kubernetes.kubeconfigPath } : { env: process.env }),
    requestTimeoutMs: config.kubernetes.requestTimeoutMs,
    credentialRefreshMs: config.kubernetes.credentialRefreshMs,
    listPageSize: config.kubernetes.listPageSize,
    retry: config.kubernetes.retry,
    onRequest: (request) => metrics.countKubeRequest(request.verb, request.code),
  });
  const events = createPvcEventRecorder(
    clients.objects,
    { reportingController: EVENT_REPORTING_CONTROLLER, reportingInstance: config.podName },
    (event, error) =>
      log.debug(
        { controller: "events", kind: "PersistentVolumeClaim", namespace: event.namespace, name: event.pvcName, reason: event.reason, err: error },
        "event not recorded",
      ),
  );
  const volSync = createVolSyncSupport({ objects: clients.objects, policy: config.policy, log, ...config.volSyncCapabilities });
  const generator = createAdmissionGenerator({
    objects: clients.objects,
    policy: config.policy,
    log,
    metrics: metrics.reconciler,
    events,
    adoptKyverno: config.reconcile.adoptKyverno,
    replacePollMs: config.reconcile.replacePollMs,
    policySupport: volSync.support,
    ...(router.isMultiple ? { policyFor: router.policyFor } : {}),
  });
  const controllers = createBackgroundControllers({
    objects: clients.objects,
    policy: config.policy,
    log,
    metrics: metrics.reconciler,
    events,
    namespace: config.namespace,
    identity: config.podName,
    leaseName: LEADER_LEASE_NAME,
    reconcile: config.reconcile,
    sweep: config.sweep,
    listPageSize: config.kubernetes.listPageSize,
    watchPvcs: true,
    watchReplicationDestinations: true,
    policySupport: volSync.support,
    ...(router.isMultiple ? { repositoryPolicyFor: router.policyFor } : {}),
    onReconciled: (report) => {
      if (report.outcome !== "error") onInventory(report.inventory);
    },
  });
  log.info({ server: clients.server }, "using the Kubernetes API");
  return { clients, generator, controllers, volSync };
}

export async function startGuardian(config: Config, log: Logger): Promise<RunningGuardian> {
  // The process and event-loop series operators expect from any Node service.
  const metrics = createMetrics({ collectProcessMetrics: true });
  const readiness = createReadiness();
  const catalogs = createCatalogs(config, log, metrics);
  const catalog = catalogs[0]!.catalog;
  let namespaceLabels: NamespaceLabels | undefined;
  const router = createRepositoryRouter(config, catalogs, (namespace) => namespaceLabels?.labelsOf(namespace));
  let inventory: readonly ProtectedPvc[] = [];
  const kubernetes = createKubernetesParts(
    config,
    log,
    metrics,
    (latest) => {
      inventory = latest;
    },
    router,
  );
  const catalogOf = (namespace: string): AdmissionCatalog | undefined => {
    const choice = router.catalogFor(namespace);
    return choice.ok ? choice.catalog : undefined;
  };
  trackBackupAges(config, metrics, catalogOf, () => (kubernetes?.controllers.isLeader() ? inventory : []));

  for (const { name, kopia } of catalogs) {
    if (!kopia) continue;
    // Informational: a replica with an unreadable repository still answers (it denies protected
    // PVCs with the reason), and out of the Service it would leave only "no endpoints available".
    readiness.register(
      name === DEFAULT_REPOSITORY_NAME ? "catalog" : `catalog-${name}`,
      () => {
        const health = kopia.health();
        if (health.ageMs !== null && health.ageMs <= config.catalog.freshnessBoundMs && health.lastError === null) return { ok: true };
        const age = health.ageMs === null ? "never loaded" : `last read ${Math.round(health.ageMs / 1000)}s ago`;
        return { ok: false, detail: `snapshot catalog of repository ${name} not fresh (${age}${health.lastError ? `; ${health.lastError}` : ""})` };
      },
      { informational: true },
    );
  }
  await Promise.all(catalogs.map(({ kopia }) => kopia?.start()));
  if (kubernetes && usesNamespaceSelectors(config.policy)) {
    namespaceLabels = createNamespaceLabels({ objects: kubernetes.clients.objects, log, ...config.namespaceLabels });
    await namespaceLabels.start();
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
    ...(router.isMultiple ? { catalogFor: router.catalogFor } : {}),
    ...(kubernetes ? { generator: kubernetes.generator } : {}),
    onGenerationFailure: (path) => metrics.countGenerationFailure(path),
  });

  // The read API verifies ServiceAccount tokens against the cluster's keys, so it needs API access.
  const readApi = kubernetes
    ? createReadApiRoutes({
        verifier: createServiceAccountTokenVerifier({
          keys: createApiServerKeySource((path, accept, signal) => kubernetes.clients.getRaw(path, accept, signal)),
          audience: config.readApi.audience,
          ...config.readApi.signingKeyReads,
        }),
        allowedServiceAccounts: config.readApi.allowedServiceAccounts,
        requestTimeoutMs: config.readApi.requestTimeoutMs,
        catalog: router.isMultiple
          ? {
              lookup: (identity, nowMs, namespace) => {
                if (namespace === undefined) return catalog.lookup(identity, nowMs);
                const choice = router.catalogFor(namespace);
                return choice.ok ? choice.catalog.lookup(identity, nowMs) : { readable: false, reason: `no repository can be chosen: ${choice.reason}` };
              },
            }
          : catalog,
        audit: createClusterAuditSource(kubernetes.clients.objects),
        policy: config.policy,
        repositoryOf: router.repositoryOf,
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
    jsonShape: config.admission.jsonShape,
    transport: config.transport,
    opsMaxConnections: config.opsListener.maxConnections,
    deadlineMs: config.admission.deadlineMs,
    drainDelayMs: config.shutdown.drainDelayMs,
    drainTimeoutMs: config.shutdown.drainTimeoutMs,
    opsDrainTimeoutMs: config.opsListener.drainTimeoutMs,
    selfProbeIntervalMs: config.selfProbe.intervalMs,
    selfProbeTimeoutMs: config.selfProbe.timeoutMs,
    ...(readApi ? { extraRoutes: [readApi] } : {}),
  });
  const { port, opsPort } = await server.start();
  kubernetes?.controllers.start();
  log.info(
    { port, opsPort, host: config.listen.host, repositoryPath: config.repository?.path ?? null, dormant: config.policy.dormant },
    "pvc-guardian serving",
  );

  return {
    port,
    opsPort,
    async stop() {
      await server.stop();
      await kubernetes?.controllers.stop();
      await kubernetes?.volSync.stop();
      kubernetes?.clients.close();
      await namespaceLabels?.stop();
      for (const { kopia } of catalogs) kopia?.stop();
    },
  };
}

/**
 * The process's one logger: a JSON line per entry on stdout (or `destination`), with the level as
 * a word (`"level":"info"`), an ISO-8601 UTC time, and thrown values under `err` through pino's
 * err serializer, so their type and stack survive.
 */
export function createProcessLogger(level: string, destination?: DestinationStream): PinoLogger {
  return pino(
    {
      level,
      base: { service: "pvc-guardian" },
      formatters: { level: (label) => ({ level: label }) },
      timestamp: stdTimeFunctions.isoTime,
    },
    destination,
  );
}

/** `pvc-guardian serve`: runs until SIGTERM or SIGINT; exit code 1 when it cannot start. */
export async function serve(env: Readonly<Record<string, string | undefined>>): Promise<number> {
  const loaded = loadConfig(env);
  if (!loaded.ok) {
    process.stderr.write(`pvc-guardian cannot start; fix these problems:\n${loaded.problems.map((p) => `  - ${p}`).join("\n")}\n`);
    return 1;
  }
  const log = createProcessLogger(loaded.config.logLevel);
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
