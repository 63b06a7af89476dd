import { setTimeout as sleep } from "node:timers/promises";
import { LEASES, isConflict, isAlreadyExists, type KubeObject, type KubeObjects } from "../kube/kube-objects.ts";
import type { Logger } from "../domain/logger.ts";
import type { ReconcilerMetrics } from "./reconciler-metrics.ts";
import { formatMicroTime } from "../domain/rfc3339-time.ts";

// Leader election through a coordination.k8s.io/v1 Lease, the way client-go does it: a holder
// renews; others take over only after the lease has gone unrenewed for its duration as measured
// on their own clock (from when they last saw it change, so clock skew between nodes does not
// matter); every write is a compare-and-swap on resourceVersion. A leader that cannot renew
// within the renew deadline (shorter than the duration) stops leading before anyone else may
// start. Stopping releases the lease so a successor need not wait.

/** Releasing is the last thing a stopping process does: bounded, so shutdown never hangs on it. */
const RELEASE_TIMEOUT_MS = 2_000;
/** Reads and writes of the release; only a conflict with our own aborted renew is tried again. */
const RELEASE_ATTEMPTS = 3;

export type LeaderElectionOptions = {
  objects: KubeObjects;
  namespace: string;
  leaseName: string;
  identity: string;
  leaseDurationMs: number;
  /** How long a leader keeps trying to renew before it steps down; below leaseDurationMs. */
  renewDeadlineMs: number;
  /** How often the leader renews and candidates retry. */
  retryPeriodMs: number;
  log: Logger;
  metrics: ReconcilerMetrics;
  /** Called on becoming leader; the signal aborts when leadership ends. */
  onStartedLeading: (signal: AbortSignal) => void;
  onStoppedLeading?: () => void;
};

export type LeaderElector = {
  start(): void;
  /** Stops campaigning, ends leadership and releases the lease. */
  stop(): Promise<void>;
  isLeader(): boolean;
};

type LeaseSpec = {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
};

export function createLeaderElector(options: LeaderElectionOptions): LeaderElector {
  const { objects, namespace, leaseName, identity, renewDeadlineMs, metrics } = options;
  const log = options.log.child({ controller: "leader-election" });
  // The Lease as the log lines name it (kind, namespace, name).
  const leaseRef = { kind: "Lease", namespace, name: leaseName };
  const leaseDurationSeconds = Math.max(1, Math.ceil(options.leaseDurationMs / 1000));
  let running = false;
  let loop: Promise<void> | undefined;
  const stopController = new AbortController();
  let leadership: AbortController | undefined;
  let lastRenewMs = 0;
  /** Once this process has held the Lease its name may stay on it; a replica that never led has nothing to release. */
  let hasLed = false;
  // What we last saw of the lease, and when (on our clock).
  let observedResourceVersion: string | undefined;
  let observedAtMs = 0;

  function becomeLeader(nowMs: number): void {
    lastRenewMs = nowMs;
    if (leadership) return;
    hasLed = true;
    leadership = new AbortController();
    metrics.leader.set({ name: leaseName }, 1);
    log.info({ ...leaseRef, identity }, "became leader");
    options.onStartedLeading(leadership.signal);
  }

  function stepDown(reason: string): void {
    if (!leadership) return;
    leadership.abort(new Error(`leadership lost: ${reason}`));
    leadership = undefined;
    metrics.leader.set({ name: leaseName }, 0);
    log.warn({ ...leaseRef, identity, reason }, "stopped leading");
    options.onStoppedLeading?.();
  }

  async function tryAcquireOrRenew(signal: AbortSignal): Promise<boolean> {
    const nowMs = Date.now();
    const lease = await objects.get(LEASES, namespace, leaseName, signal);
    const fresh: LeaseSpec = {
      holderIdentity: identity,
      leaseDurationSeconds,
      acquireTime: formatMicroTime(nowMs),
      renewTime: formatMicroTime(nowMs),
      leaseTransitions: 0,
    };
    if (lease === undefined) {
      try {
        await objects.create({ apiVersion: LEASES.apiVersion, kind: LEASES.kind, metadata: { name: leaseName, namespace }, spec: fresh }, signal);
        return true;
      } catch (error) {
        if (isAlreadyExists(error)) return false;
        throw error;
      }
    }
    if (lease.metadata.resourceVersion !== observedResourceVersion) {
      observedResourceVersion = lease.metadata.resourceVersion;
      observedAtMs = nowMs;
    }
    const spec = (lease["spec"] as LeaseSpec | undefined) ?? {};
    const holder = spec.holderIdentity ?? "";
    const durationMs = (spec.leaseDurationSeconds ?? leaseDurationSeconds) * 1000;
    if (holder !== "" && holder !== identity && nowMs - observedAtMs < durationMs) return false;
    const next: LeaseSpec =
      holder === identity
        ? { ...spec, renewTime: formatMicroTime(nowMs), leaseDurationSeconds }
        : { ...fresh, leaseTransitions: (spec.leaseTransitions ?? 0) + 1 };
    try {
      const updated = await objects.replace({ ...lease, spec: next } as KubeObject, signal);
      observedResourceVersion = updated.metadata.resourceVersion;
      observedAtMs = nowMs;
      return true;
    } catch (error) {
      if (isConflict(error)) return false;
      throw error;
    }
  }

  async function campaign(): Promise<void> {
    const signal = stopController.signal;
    while (running) {
      try {
        const renewed = await tryAcquireOrRenew(AbortSignal.any([signal, AbortSignal.timeout(options.retryPeriodMs * 2)]));
        if (renewed) becomeLeader(Date.now());
        else stepDown("another replica holds the lease");
      } catch (error) {
        if (!running) break;
        log.debug({ err: error }, "lease request failed");
      }
      if (leadership && Date.now() - lastRenewMs > renewDeadlineMs) stepDown("lease not renewed within the renew deadline");
      await sleep(options.retryPeriodMs, undefined, { signal }).catch(() => {});
    }
  }

  /**
   * Clears the holder if the Lease still names us, even after a local step-down (a missed renew
   * deadline leaves our name on it). A renew aborted by
   * stop() may still land on the API server after our read: that conflict is read again.
   */
  async function release(): Promise<void> {
    const signal = AbortSignal.timeout(RELEASE_TIMEOUT_MS);
    try {
      for (let attempt = 1; ; attempt++) {
        const lease = await objects.get(LEASES, namespace, leaseName, signal);
        const spec = (lease?.["spec"] as LeaseSpec | undefined) ?? {};
        if (!lease || spec.holderIdentity !== identity) return;
        try {
          await objects.replace(
            { ...lease, spec: { ...spec, holderIdentity: "", leaseDurationSeconds: 1, renewTime: formatMicroTime(Date.now()) } } as KubeObject,
            signal,
          );
          log.info({ ...leaseRef, identity }, "lease released");
          return;
        } catch (error) {
          if (!isConflict(error) || attempt >= RELEASE_ATTEMPTS) throw error;
        }
      }
    } catch (error) {
      log.warn({ err: error }, "lease release failed; a successor waits out the lease");
    }
  }

  return {
    start() {
      if (running) return;
      running = true;
      metrics.leader.set({ name: leaseName }, 0);
      loop = campaign();
    },
    async stop() {
      if (!running) return;
      running = false;
      stopController.abort();
      await loop;
      stepDown("stopping");
      if (hasLed) await release();
    },
    isLeader: () => leadership !== undefined,
  };
}
