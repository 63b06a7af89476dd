// The configuration's defaults (config.ts's defaultConfig), shaped as the options of the modules
// tests and benchmarks build on their own, the way main.ts and background-controllers.ts pass
// them. A test spreads these and overrides what it is about, so no default number is copied here.

import { defaultConfig } from "../../webhook/config.ts";
import type { AdmissionGeneratorDeps } from "../../webhook/reconciler/admission-generator.ts";
import type { ReconcilerDeps } from "../../webhook/reconciler/reconciler.ts";
import type { SweeperDeps } from "../../webhook/reconciler/sweeper.ts";
import type { KubeClientOptions } from "../../webhook/kube/kube-client.ts";
import type { AdmissionRoutesDeps } from "../../webhook/server/admission-routes.ts";
import type { GuardianServerOptions } from "../../webhook/server/guardian-server.ts";

export const defaultSettings = defaultConfig();

export const reconcilerSettings = {
  adoptKyverno: defaultSettings.reconcile.adoptKyverno,
  pageSize: defaultSettings.kubernetes.listPageSize,
  writeConcurrency: defaultSettings.reconcile.writeConcurrency,
} satisfies Partial<ReconcilerDeps>;

export const sweeperSettings = {
  dryRun: defaultSettings.sweep.dryRun,
  pageSize: defaultSettings.kubernetes.listPageSize,
  deleteConcurrency: defaultSettings.sweep.deleteConcurrency,
} satisfies Partial<SweeperDeps>;

export const admissionGeneratorSettings = {
  adoptKyverno: defaultSettings.reconcile.adoptKyverno,
  replacePollMs: defaultSettings.reconcile.replacePollMs,
} satisfies Partial<AdmissionGeneratorDeps>;

/** The API client's timings and page size, without the credentials' source. */
export const kubeClientSettings = {
  requestTimeoutMs: defaultSettings.kubernetes.requestTimeoutMs,
  credentialRefreshMs: defaultSettings.kubernetes.credentialRefreshMs,
  listPageSize: defaultSettings.kubernetes.listPageSize,
  retry: defaultSettings.kubernetes.retry,
} satisfies Partial<KubeClientOptions>;

/** How the read API's token verifier reads the signing keys. */
export const signingKeyReadSettings = defaultSettings.readApi.signingKeyReads;

/** The admission routes' limits, without a client certificate required. */
export const admissionRouteSettings = {
  maxInFlightBodyBytes: defaultSettings.admission.maxInFlightBodyBytes,
  maxConcurrentReviews: defaultSettings.admission.maxConcurrentReviews,
  jsonShape: defaultSettings.admission.jsonShape,
  requireClientCertificate: false,
} satisfies Partial<AdmissionRoutesDeps>;

/** Everything but the listener addresses, certificate, handlers and instruments. */
export const guardianServerSettings = {
  maxBodyBytes: defaultSettings.admission.maxBodyBytes,
  maxInFlightBodyBytes: defaultSettings.admission.maxInFlightBodyBytes,
  maxConcurrentReviews: defaultSettings.admission.maxConcurrentReviews,
  jsonShape: defaultSettings.admission.jsonShape,
  deadlineMs: defaultSettings.admission.deadlineMs,
  transport: defaultSettings.transport,
  opsMaxConnections: defaultSettings.opsListener.maxConnections,
  drainDelayMs: defaultSettings.shutdown.drainDelayMs,
  drainTimeoutMs: defaultSettings.shutdown.drainTimeoutMs,
  opsDrainTimeoutMs: defaultSettings.opsListener.drainTimeoutMs,
  selfProbeIntervalMs: defaultSettings.selfProbe.intervalMs,
  selfProbeTimeoutMs: defaultSettings.selfProbe.timeoutMs,
} satisfies Partial<GuardianServerOptions>;
