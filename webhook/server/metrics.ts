// The single owner of metric names. Each metric is created here against a private Registry, so two
// servers in one process (tests, the benchmark) never share counters, and nothing registers at
// import time. To add a metric: declare it in `createMetrics`, initialise its known label values,
// and return it (or a small recording function) on the `Metrics` object.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export const metricPrefix = 'pvc_guardian_';

export const admissionWebhooks = ['mutate', 'validate'] as const;
export type AdmissionWebhook = (typeof admissionWebhooks)[number];

/**
 * allowed/denied/patched: the handler's answer. error: the answer was produced by the route
 * instead of the handler (malformed body, handler exception, deadline), whatever it said.
 */
export const admissionOutcomes = ['allowed', 'denied', 'patched', 'error'] as const;
export type AdmissionOutcome = (typeof admissionOutcomes)[number];

export const tlsReloadResults = ['success', 'failure'] as const;
export type TlsReloadResult = (typeof tlsReloadResults)[number];

// Admission latency lives well under a millisecond on the fast path and must stay below the
// webhook timeout (at most 10 s) on the slow one.
const admissionDurationBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export type AdmissionMetrics = {
  observeAdmission(webhook: AdmissionWebhook, outcome: AdmissionOutcome, durationSeconds: number): void;
};

export type TlsMetrics = {
  setCertificateNotAfter(notAfterMs: number): void;
  countTlsReload(result: TlsReloadResult): void;
};

export type Metrics = AdmissionMetrics &
  TlsMetrics & {
    registry: Registry;
    /** Prometheus text exposition of every metric in the registry. */
    render(): Promise<string>;
    contentType: string;
  };

export type MetricsOptions = {
  /** Node.js process and runtime metrics; off in unit tests that only look at our own. */
  collectProcessMetrics?: boolean;
};

export function createMetrics(options: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  if (options.collectProcessMetrics ?? true) {
    // Left under their standard names (process_*, nodejs_*), not our prefix: dashboards and
    // alerts for Node processes already look for those names.
    collectDefaultMetrics({ register: registry });
  }

  const admissionRequests = new Counter({
    name: `${metricPrefix}admission_requests_total`,
    help: 'Admission reviews answered, by webhook and outcome.',
    labelNames: ['webhook', 'outcome'],
    registers: [registry],
  });
  const admissionDuration = new Histogram({
    name: `${metricPrefix}admission_request_duration_seconds`,
    help: 'Time from the request reaching the route to the AdmissionReview answer, by webhook and outcome.',
    labelNames: ['webhook', 'outcome'],
    buckets: admissionDurationBuckets,
    registers: [registry],
  });
  const certificateNotAfter = new Gauge({
    name: `${metricPrefix}tls_certificate_not_after_seconds`,
    help: 'Expiry of the serving certificate in use, as a Unix time in seconds.',
    registers: [registry],
  });
  const tlsReloads = new Counter({
    name: `${metricPrefix}tls_reloads_total`,
    help: 'Attempts to load a changed serving certificate and key pair, by result.',
    labelNames: ['result'],
    registers: [registry],
  });

  // Children are bound once so the request path does no label hashing or object building.
  type AdmissionChild = { count: { inc(): void }; duration: { observe(value: number): void } };
  const admissionChildren = new Map<AdmissionWebhook, Map<AdmissionOutcome, AdmissionChild>>();
  for (const webhook of admissionWebhooks) {
    const byOutcome = new Map<AdmissionOutcome, AdmissionChild>();
    for (const outcome of admissionOutcomes) {
      const count = admissionRequests.labels(webhook, outcome);
      count.inc(0);
      byOutcome.set(outcome, { count, duration: admissionDuration.labels(webhook, outcome) });
    }
    admissionChildren.set(webhook, byOutcome);
  }
  const tlsReloadChildren = new Map<TlsReloadResult, { inc(): void }>();
  for (const result of tlsReloadResults) {
    const child = tlsReloads.labels(result);
    child.inc(0);
    tlsReloadChildren.set(result, child);
  }

  return {
    registry,
    contentType: registry.contentType,
    render: () => registry.metrics(),
    observeAdmission(webhook, outcome, durationSeconds) {
      const child = admissionChildren.get(webhook)?.get(outcome);
      if (child === undefined) return;
      child.count.inc();
      child.duration.observe(durationSeconds);
    },
    setCertificateNotAfter(notAfterMs) {
      certificateNotAfter.set(notAfterMs / 1000);
    },
    countTlsReload(result) {
      tlsReloadChildren.get(result)?.inc();
    },
  };
}
