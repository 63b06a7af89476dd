// The configuration's defaults (config.ts's defaultConfig), shaped as the options of the modules
// tests and benchmarks build on their own, the way main.ts and background-controllers.ts pass
// them. A test spreads these and overrides what it is about, so no default number is copied here.

import { defaultConfig } from "../../webhook/config.ts";
import type { GuardianServerOptions } from "../../webhook/server/guardian-server.ts";

export const defaultSettings = defaultConfig();

/** Everything but the listener addresses, certificate, handlers and instruments. */
export const guardianServerSettings = {
  maxBodyBytes: defaultSettings.admission.maxBodyBytes,
  maxInFlightBodyBytes: defaultSettings.admission.maxInFlightBodyBytes,
  maxConcurrentReviews: defaultSettings.admission.maxConcurrentReviews,
  jsonShape: defaultSettings.admission.jsonShape,
  deadlineMs: defaultSettings.admission.routeDeadlineMs,
  transport: defaultSettings.transport,
  opsMaxConnections: defaultSettings.opsListener.maxConnections,
  drainDelayMs: defaultSettings.shutdown.drainDelayMs,
  drainTimeoutMs: defaultSettings.shutdown.drainTimeoutMs,
  opsDrainTimeoutMs: defaultSettings.opsListener.drainTimeoutMs,
  selfProbeIntervalMs: defaultSettings.selfProbe.intervalMs,
  selfProbeTimeoutMs: defaultSettings.selfProbe.timeoutMs,
} satisfies Partial<GuardianServerOptions>;
