// The single owner of metric names. Each metric is created here against a private Registry, so two
// servers in one process (tests, the benchmark) never share counters, and nothing registers at
// import time. To add a metric: declare it in `createMetrics`, initialise its known label values,
// and return it (or a small recording function) on the `Metrics` object.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { restoreVerdicts } from "../domain/restore-verification.ts";
import { LEADER_LEASE_NAME } from "../domain/wire-names.ts";
import type { ReconcilerMetrics } from "../reconciler/reconciler-metrics.ts";

export const metricPrefix = "pvc_guardian_";

export const admissionWebhooks = ["mutate", "validate"] as const;
export type AdmissionWebhook = (typeof admissionWebhooks)[number];

/**
 * allowed/denied/patched: the handler's answer. error: the answer was produced by the route
 * instead of the handler (malformed body, handler exception, deadline), whatever it said.
 */
export const admissionOutcomes = ["allowed", "denied", "patched", "error"] as const;
export type AdmissionOutcome = (typeof admissionOutcomes)[number];

export const tlsReloadResults = ["success", "failure"] as const;
export type TlsReloadResult = (typeof tlsReloadResults)[number];

// Admission latency lives well under a millisecond on the fast path and must stay below the
// webhook timeout (at most 10 s) on the slow one.
const admissionDurationBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * The status codes an answer carries (200 for an allowance without a status); each starts at 0.
 * 400/413/415 a malformed review, 403 a denial, 429 shed load, 500 the route's fallback.
 */
export const admissionResponseCodes = [200, 400, 403, 413, 415, 429, 500] as const;

export type AdmissionMetrics = {
  /** `code` is the AdmissionReview's status code, 200 when it has none. */
  observeAdmission(webhook: AdmissionWebhook, outcome: AdmissionOutcome, durationSeconds: number, code: number): void;
  /** Counts a review in progress until the returned function is called (once). */
  trackAdmission(webhook: AdmissionWebhook): () => void;
};

/** Requests to the Kubernetes API server, as webhook/kube/kube-client.ts reports them. */
export type KubeRequestMetrics = {
  /** One request to the API server: its Kubernetes verb, and its HTTP status as text or "error" when none came. */
  countKubeRequest(verb: string, code: string): void;
};

export type TlsMetrics = {
  setCertificateNotAfter(notAfterMs: number): void;
  countTlsReload(result: TlsReloadResult): void;
};

/** What the snapshot catalog reports after each refresh; see webhook/kopia/snapshot-catalog.ts. */
export type CatalogMetrics = {
  /** `repository` is the policy's name for the repository (`default` for the top-level one). */
  observeCatalogRefresh(outcome: { ok: boolean; durationMs: number; sources?: number; snapshots?: number }, repository?: string): void;
  /** Reads the catalog's age when scraped, so the gauge is current without a timer. */
  trackCatalogAge(ageSeconds: () => number | null, repository?: string): void;
};

/** One protected PVC as the backup-age gauge reports it. */
export type BackupAgeRow = { namespace: string; pvc: string; tier: string; timestampMs: number };

export type BackupAgeMetrics = {
  /** Read at scrape: the newest complete snapshot of each protected PVC (or when its first was due). */
  trackBackupAges(rows: () => readonly BackupAgeRow[]): void;
  setTierIntervals(intervalSeconds: Readonly<Record<string, number>>): void;
};

export const generationPaths = ["restore", "fresh"] as const;
export type GenerationPath = (typeof generationPaths)[number];

export const objectKinds = ["Secret", "ReplicationDestination", "ReplicationSource"] as const;
export const reconcileOutcomes = ["ok", "partial", "error"] as const;
export const sweepOutcomes = ["ok", "partial", "error", "held", "dry-run"] as const;

export type Metrics = AdmissionMetrics &
  KubeRequestMetrics &
  TlsMetrics &
  CatalogMetrics &
  BackupAgeMetrics & {
    /** The reconciler's port (reconciler/reconciler-metrics.ts), made of prom-client metrics. */
    reconciler: ReconcilerMetrics;
    countGenerationFailure(path: GenerationPath): void;
    registry: Registry;
    /** Prometheus text exposition of every metric in the registry. */
    render(): Promise<string>;
    contentType: string;
  };

export type MetricsOptions = {
  /** Node.js process and runtime metrics; off in unit tests that only look at our own. */
  collectProcessMetrics: boolean;
};

export function createMetrics(options: MetricsOptions): Metrics {
  const registry = new Registry();
  if (options.collectProcessMetrics) {
    // Left under their standard names (process_*, nodejs_*), not our prefix: dashboards and
    // alerts for Node processes already look for those names.
    collectDefaultMetrics({ register: registry });
  }

  const admissionRequests = new Counter({
    name: `${metricPrefix}admission_requests_total`,
    help: "Admission reviews answered, by webhook and outcome.",
    labelNames: ["webhook", "outcome"],
    registers: [registry],
  });
  const admissionDuration = new Histogram({
    name: `${metricPrefix}admission_request_duration_seconds`,
    help: "Time from the request reaching the route to the AdmissionReview answer, by webhook and outcome.",
    labelNames: ["webhook", "outcome"],
    buckets: admissionDurationBuckets,
    registers: [registry],
  });
  const admissionResponses = new Counter({
    name: `${metricPrefix}admission_responses_total`,
    help: "Admission reviews answered, by webhook and the answer's status code (200 for an allowance without one).",
    labelNames: ["webhook", "code"],
    registers: [registry],
  });
  const admissionInFlight = new Gauge({
    name: `${metricPrefix}admission_requests_in_flight`,
    help: "Admission requests being answered right now, by webhook.",
    labelNames: ["webhook"],
    registers: [registry],
  });
  const certificateNotAfter = new Gauge({
    name: `${metricPrefix}tls_certificate_not_after_seconds`,
    help: "Expiry of the serving certificate in use, as a Unix time in seconds.",
    registers: [registry],
  });
  const tlsReloads = new Counter({
    name: `${metricPrefix}tls_reloads_total`,
    help: "Attempts to load a changed serving certificate and key pair, by result.",
    labelNames: ["result"],
    registers: [registry],
  });

  // Children are bound once so the request path does no label hashing or object building.
  type AdmissionChild = { count: { inc(): void }; duration: { observe(value: number): void } };
  const admissionChildren = new Map<AdmissionWebhook, Map<AdmissionOutcome, AdmissionChild>>();
  const responseChildren = new Map<AdmissionWebhook, Map<number, { inc(): void }>>();
  const inFlightChildren = new Map<AdmissionWebhook, { inc(): void; dec(): void }>();
  for (const webhook of admissionWebhooks) {
    const byOutcome = new Map<AdmissionOutcome, AdmissionChild>();
    for (const outcome of admissionOutcomes) {
      const count = admissionRequests.labels(webhook, outcome);
      count.inc(0);
      byOutcome.set(outcome, { count, duration: admissionDuration.labels(webhook, outcome) });
    }
    admissionChildren.set(webhook, byOutcome);
    const byCode = new Map<number, { inc(): void }>();
    for (const code of admissionResponseCodes) {
      const count = admissionResponses.labels(webhook, String(code));
      count.inc(0);
      byCode.set(code, count);
    }
    responseChildren.set(webhook, byCode);
    const inFlight = admissionInFlight.labels(webhook);
    inFlight.set(0);
    inFlightChildren.set(webhook, inFlight);
  }
  const tlsReloadChildren = new Map<TlsReloadResult, { inc(): void }>();
  for (const result of tlsReloadResults) {
    const child = tlsReloads.labels(result);
    child.inc(0);
    tlsReloadChildren.set(result, child);
  }

  const catalogRefreshes = new Counter({
    name: `${metricPrefix}catalog_refreshes_total`,
    help: "Reads of a Kopia repository into its snapshot catalog, by repository and result.",
    labelNames: ["repository", "result"],
    registers: [registry],
  });
  const catalogRefreshDuration = new Histogram({
    name: `${metricPrefix}catalog_refresh_duration_seconds`,
    help: "Time to read new blobs of a Kopia repository into its catalog.",
    labelNames: ["repository"],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const catalogSources = new Gauge({
    name: `${metricPrefix}catalog_sources`,
    help: "Kopia source identities (user@host:/path) in each repository's catalog.",
    labelNames: ["repository"],
    registers: [registry],
  });
  const catalogSnapshots = new Gauge({
    name: `${metricPrefix}catalog_snapshots`,
    help: "Snapshots in each repository's catalog, complete and incomplete.",
    labelNames: ["repository"],
    registers: [registry],
  });
  const catalogAges = new Map<string, () => number | null>();
  new Gauge({
    name: `${metricPrefix}catalog_age_seconds`,
    help: "Seconds since each repository's catalog last read it successfully; NaN before the first read.",
    labelNames: ["repository"],
    registers: [registry],
    collect() {
      for (const [repository, ageSeconds] of catalogAges) {
        const age = ageSeconds();
        this.labels(repository).set(age === null ? Number.NaN : age);
      }
    },
  });

  let backupAgeRows: () => readonly BackupAgeRow[] = () => [];
  new Gauge({
    name: `${metricPrefix}pvc_newest_snapshot_timestamp_seconds`,
    help:
      "Start time of the newest complete snapshot of each protected PVC, from the catalog; for a PVC with none yet, " +
      "the time its first backup became due (creation plus the first-backup delay). Reported by the leader.",
    labelNames: ["namespace", "pvc", "tier"],
    registers: [registry],
    collect() {
      this.reset();
      for (const row of backupAgeRows()) this.labels(row.namespace, row.pvc, row.tier).set(row.timestampMs / 1000);
    },
  });
  const tierInterval = new Gauge({
    name: `${metricPrefix}tier_interval_seconds`,
    help: "The nominal interval between two runs of each tier schedule.",
    labelNames: ["tier"],
    registers: [registry],
  });

  const generationFailures = new Counter({
    name: `${metricPrefix}generation_failures_total`,
    help: "Backup objects the validating webhook could not write, by path: restore denies, fresh allows and leaves repair to the reconciler.",
    labelNames: ["path"],
    registers: [registry],
  });
  for (const path of generationPaths) generationFailures.labels(path).inc(0);

  // Label values appear with the first request: the verbs are few, but the codes are whatever the
  // API server answers. code="error" is a request that got no answer (refused, reset, timed out).
  const kubeRequests = new Counter({
    name: `${metricPrefix}kube_requests_total`,
    help: "Requests to the Kubernetes API server, by Kubernetes verb (get, list, watch, create, update, patch, delete) and status code (error: no answer).",
    labelNames: ["verb", "code"],
    registers: [registry],
  });

  const counterWith = (name: string, help: string, labelName: string, values: readonly string[]): Counter => {
    const counter = new Counter({ name: `${metricPrefix}${name}`, help, labelNames: [labelName], registers: [registry] });
    for (const value of values) counter.labels(value).inc(0);
    return counter;
  };
  const reconciler: ReconcilerMetrics = {
    reconcilePasses: counterWith("reconcile_passes_total", "Reconcile passes, by outcome.", "outcome", reconcileOutcomes),
    reconcileDuration: new Histogram({
      name: `${metricPrefix}reconcile_duration_seconds`,
      help: "Time per reconcile pass, from its lists to its last write, whatever its outcome.",
      // A pass over a few PVCs takes milliseconds; a thousand with writes to make, seconds to minutes.
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
      registers: [registry],
    }),
    sweepPasses: counterWith("sweep_passes_total", "Sweep passes, by outcome; held means the mass-deletion breaker stopped it.", "outcome", sweepOutcomes),
    objectsCreated: counterWith("objects_created_total", "Generated objects created, by kind.", "kind", objectKinds),
    objectsRepaired: counterWith("objects_repaired_total", "Generated objects whose fields we own were put back, by kind.", "kind", objectKinds),
    objectsDeleted: counterWith("objects_deleted_total", "Orphaned generated objects deleted by the sweeper, by kind.", "kind", objectKinds),
    restoreVerifications: counterWith(
      "restore_verifications_total",
      "Finished restores judged by the leader, by verdict: the mover's report against the pinned snapshot (verified, mismatch), nothing restored (empty), mover failed (failed), or no report kept by VolSync (unverified).",
      "verdict",
      restoreVerdicts,
    ),
    leader: new Gauge({
      name: `${metricPrefix}leader`,
      help: "1 while this replica holds the Lease named by the label, 0 otherwise.",
      labelNames: ["name"],
      registers: [registry],
    }),
  };
  reconciler.leader.set({ name: LEADER_LEASE_NAME }, 0);

  return {
    registry,
    reconciler,
    countGenerationFailure(path) {
      generationFailures.labels(path).inc();
    },
    observeCatalogRefresh(outcome, repository = "default") {
      for (const result of ["success", "failure"]) catalogRefreshes.labels(repository, result).inc(0);
      catalogRefreshes.labels(repository, outcome.ok ? "success" : "failure").inc();
      catalogRefreshDuration.labels(repository).observe(outcome.durationMs / 1000);
      if (outcome.sources !== undefined) catalogSources.labels(repository).set(outcome.sources);
      if (outcome.snapshots !== undefined) catalogSnapshots.labels(repository).set(outcome.snapshots);
    },
    trackBackupAges(rows) {
      backupAgeRows = rows;
    },
    setTierIntervals(intervalSeconds) {
      tierInterval.reset();
      for (const [tier, seconds] of Object.entries(intervalSeconds)) tierInterval.labels(tier).set(seconds);
    },
    trackCatalogAge(ageSeconds, repository = "default") {
      catalogAges.set(repository, ageSeconds);
      // Known label values start at 0.
      for (const result of ["success", "failure"]) catalogRefreshes.labels(repository, result).inc(0);
    },
    contentType: registry.contentType,
    render: () => registry.metrics(),
    observeAdmission(webhook, outcome, durationSeconds, code) {
      const child = admissionChildren.get(webhook)?.get(outcome);
      if (child === undefined) return;
      child.count.inc();
      child.duration.observe(durationSeconds);
      const byCode = responseChildren.get(webhook)!;
      const response = byCode.get(code) ?? admissionResponses.labels(webhook, String(code));
      response.inc();
    },
    trackAdmission(webhook) {
      const child = inFlightChildren.get(webhook);
      if (child === undefined) return () => {};
      child.inc();
      let isDone = false;
      return () => {
        if (isDone) return;
        isDone = true;
        child.dec();
      };
    },
    countKubeRequest(verb, code) {
      kubeRequests.labels(verb, code).inc();
    },
    setCertificateNotAfter(notAfterMs) {
      certificateNotAfter.set(notAfterMs / 1000);
    },
    countTlsReload(result) {
      tlsReloadChildren.get(result)?.inc();
    },
  };
}
