import { setTimeout as sleep } from "node:timers/promises";
import { eventPassDelayMs } from "./event-pass-delay.ts";
import { CronExpressionParser } from "cron-parser";
import type { Policy } from "../domain/policy.ts";
import type { PolicySupport } from "../domain/policy-support.ts";
import { BACKUP_LABEL, LABEL_MANAGED_BY, LEADER_LEASE_NAME, MANAGED_BY_GUARDIAN } from "../domain/wire-names.ts";
import { PERSISTENT_VOLUME_CLAIMS, REPLICATION_DESTINATIONS, type KubeObject, type KubeObjects, type ResourceKind } from "../kube/kube-objects.ts";
import type { PvcEventRecorder } from "../kube/pvc-events.ts";
import { waitForIntervalOrWake } from "./interval-wait.ts";
import { createLeaderElector } from "./leader-election.ts";
import { createReconciler, type ReconcileReport, type ReconcilerDeps } from "./reconciler.ts";
import type { Logger } from "../domain/logger.ts";
import type { ReconcilerMetrics } from "./reconciler-metrics.ts";
import { awaitsRestoreVerdict } from "./restore-verifier.ts";
import { createSweeper, type SweepReport } from "./sweeper.ts";

// The reconciler and the sweeper as main.ts runs them: every replica campaigns for the Lease;
// the leader reconciles on start, on an interval and shortly after PVC changes or a restore's
// mover finishing (two watches, one long-lived request each), and sweeps on a cron schedule. Passes run one at a time.
// Losing the lease aborts whatever pass is running.

export type BackgroundControllerOptions = {
  objects: KubeObjects;
  policy: Pick<Policy, "tiers" | "excludedNamespaces" | "resources" | "nfs" | "firstBackupDelayMs" | "sourceSecret" | "additionalRepositories">;
  log: Logger;
  metrics: ReconcilerMetrics;
  events?: PvcEventRecorder;
  /** pvc-guardian's namespace: the Lease and the sweep acknowledgement live here. */
  namespace: string;
  /** This replica's name in the Lease, e.g. the pod name. */
  identity: string;
  leaseName?: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  reconcileIntervalMs?: number;
  /**
   * Reconcile shortly after a PVC change; the delay batches bursts into one pass, and grows with
   * the last pass's duration on a large cluster (event-pass-delay.ts).
   */
  watchPvcs?: boolean;
  /** Reconcile shortly after one of our restores' movers finishes, so its verdict follows in seconds. */
  watchReplicationDestinations?: boolean;
  watchDebounceMs?: number;
  sweepSchedule?: string;
  sweepGracePeriodMs?: number;
  sweepDryRun?: boolean;
  adoptKyverno?: boolean;
  policySupport?: () => PolicySupport;
  repositoryPolicyFor?: ReconcilerDeps["repositoryPolicyFor"];
  pageSize?: number;
  writeConcurrency?: number;
  /** Called after each reconcile pass this replica runs as leader. */
  onReconciled?: (report: ReconcileReport) => void;
};

export type BackgroundControllers = {
  start(): void;
  stop(): Promise<void>;
  isLeader(): boolean;
};

export const DEFAULT_LEASE_NAME = LEADER_LEASE_NAME;
export const DEFAULT_SWEEP_SCHEDULE = "*/15 * * * *";

export function createBackgroundControllers(options: BackgroundControllerOptions): BackgroundControllers {
  const { log } = options;
  const reconcileIntervalMs = options.reconcileIntervalMs ?? 60_000;
  const watchDebounceMs = options.watchDebounceMs ?? 1_000;
  const sweepSchedule = options.sweepSchedule ?? DEFAULT_SWEEP_SCHEDULE;
  CronExpressionParser.parse(sweepSchedule, { tz: "UTC" }); // a bad schedule fails at start-up
  const reconciler = createReconciler({
    objects: options.objects,
    policy: options.policy,
    log,
    metrics: options.metrics,
    ...(options.events ? { events: options.events } : {}),
    adoptKyverno: options.adoptKyverno ?? false,
    ...(options.policySupport ? { policySupport: options.policySupport } : {}),
    ...(options.repositoryPolicyFor ? { repositoryPolicyFor: options.repositoryPolicyFor } : {}),
    ...(options.writeConcurrency ? { writeConcurrency: options.writeConcurrency } : {}),
    ...(options.pageSize ? { pageSize: options.pageSize } : {}),
  });
  const sweeper = createSweeper({
    objects: options.objects,
    policy: options.policy,
    log,
    metrics: options.metrics,
    ...(options.events ? { events: options.events } : {}),
    namespace: options.namespace,
    gracePeriodMs: options.sweepGracePeriodMs ?? 60 * 60_000,
    dryRun: options.sweepDryRun ?? false,
    ...(options.pageSize ? { pageSize: options.pageSize } : {}),
  });

  // One pass at a time, across both loops.
  let queue: Promise<unknown> = Promise.resolve();
  const serialised = <T>(pass: () => Promise<T>): Promise<T> => {
    const run = queue.then(pass, pass);
    queue = run.catch(() => undefined);
    return run;
  };

  async function lead(signal: AbortSignal): Promise<void> {
    let reconcileRequested = true;
    let lastPassMs: number | undefined;
    let wake: (() => void) | undefined;
    const requestReconcile = (): void => {
      reconcileRequested = true;
      wake?.();
    };

    const reconcileLoop = async (): Promise<void> => {
      while (!signal.aborted) {
        if (reconcileRequested) {
          reconcileRequested = false;
          const startedMs = performance.now();
          const report = await serialised<ReconcileReport>(() => reconciler.runPass(signal));
          lastPassMs = performance.now() - startedMs;
          options.onReconciled?.(report);
        }
        const wait = waitForIntervalOrWake(signal, reconcileIntervalMs);
        wake = wait.wake;
        if ((await wait.done) === "interval") reconcileRequested = true;
        wake = undefined;
      }
    };

    const sweepLoop = async (): Promise<void> => {
      // A sweep at once starts the grace-period clocks; deletions wait for later sweeps.
      await serialised<SweepReport>(() => sweeper.runPass(signal));
      while (!signal.aborted) {
        const next = CronExpressionParser.parse(sweepSchedule, { tz: "UTC", currentDate: new Date() }).next().getTime();
        await sleep(Math.max(0, next - Date.now()), undefined, { signal }).catch(() => {});
        if (signal.aborted) break;
        await serialised<SweepReport>(() => sweeper.runPass(signal));
      }
    };

    let pending: NodeJS.Timeout | undefined;
    const requestSoon = (): void => {
      if (pending) return;
      pending = setTimeout(
        () => {
          pending = undefined;
          requestReconcile();
        },
        eventPassDelayMs(lastPassMs, watchDebounceMs, reconcileIntervalMs),
      );
    };
    // Events only trigger a pass, so a watch starts from "now" and needs no list of its own.
    const watchLoop = async (kind: ResourceKind, labelSelector: string, isWorthAPass: (object: KubeObject) => boolean): Promise<void> => {
      while (!signal.aborted) {
        try {
          await options.objects.watch(
            kind,
            { labelSelector },
            (event) => {
              if (event.type !== "BOOKMARK" && isWorthAPass(event.object)) requestSoon();
            },
            signal,
          );
        } catch (error) {
          log.debug({ err: error, kind: kind.kind }, "watch ended");
          await sleep(1_000, undefined, { signal }).catch(() => {});
        }
      }
      clearTimeout(pending);
    };
    // VolSync rewrites an RD's status often (conditions, sync times): only a finished restore
    // still waiting for its verdict is worth a pass; our own verdict write is not.
    const isRestoreToJudge = (destination: KubeObject): boolean =>
      awaitsRestoreVerdict(destination) &&
      (destination["status"] as { latestMoverStatus?: { result?: unknown } } | undefined)?.latestMoverStatus?.result !== undefined;

    const loops = [
      reconcileLoop(),
      sweepLoop(),
      ...(options.watchPvcs === false ? [] : [watchLoop(PERSISTENT_VOLUME_CLAIMS, BACKUP_LABEL, () => true)]),
      ...(options.watchReplicationDestinations === false
        ? []
        : [watchLoop(REPLICATION_DESTINATIONS, `${LABEL_MANAGED_BY}=${MANAGED_BY_GUARDIAN}`, isRestoreToJudge)]),
    ];
    await Promise.all(loops.map((loop) => loop.catch((error: unknown) => log.error({ err: error }, "background loop failed"))));
  }

  let leading: Promise<void> | undefined;
  const elector = createLeaderElector({
    objects: options.objects,
    namespace: options.namespace,
    leaseName: options.leaseName ?? DEFAULT_LEASE_NAME,
    identity: options.identity,
    leaseDurationMs: options.leaseDurationMs ?? 15_000,
    ...(options.renewDeadlineMs ? { renewDeadlineMs: options.renewDeadlineMs } : {}),
    retryPeriodMs: options.retryPeriodMs ?? 2_000,
    log,
    metrics: options.metrics,
    onStartedLeading: (signal) => {
      leading = lead(signal);
    },
  });

  return {
    start: () => elector.start(),
    async stop() {
      await elector.stop();
      await leading;
      await queue;
    },
    isLeader: () => elector.isLeader(),
  };
}
