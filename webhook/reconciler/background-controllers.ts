import { setTimeout as sleep } from "node:timers/promises";
import { eventPassDelayMs } from "./event-pass-delay.ts";
import { CronExpressionParser } from "cron-parser";
import type { Policy } from "../domain/policy.ts";
import type { PolicySupport } from "../domain/policy-support.ts";
import { BACKUP_LABEL, LABEL_MANAGED_BY, MANAGED_BY_GUARDIAN } from "../domain/wire-names.ts";
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

/** How the leader reconciles and holds its Lease: policy reconcile.* and the fixed values beside them in config.ts. */
export type ReconcileSettings = {
  intervalMs: number;
  /**
   * Reconcile shortly after a watched change; the delay batches bursts into one pass, and grows
   * with the last pass's duration on a large cluster (event-pass-delay.ts).
   */
  watchDebounceMs: number;
  leaseDurationMs: number;
  /** How long a leader keeps trying to renew before it steps down; below leaseDurationMs. */
  renewDeadlineMs: number;
  /** How often the leader renews and candidates retry. */
  retryPeriodMs: number;
  adoptKyverno: boolean;
  writeConcurrency: number;
};

/** When and how the sweeper deletes: policy sweep.* and the fixed delete concurrency. */
export type SweepSettings = { schedule: string; gracePeriodMs: number; dryRun: boolean; deleteConcurrency: number };

export type BackgroundControllerOptions = Pick<
  ReconcilerDeps,
  "objects" | "policy" | "log" | "metrics" | "events" | "policySupport" | "repositoryPolicyFor"
> & {
  /** pvc-guardian's namespace: the Lease and the sweep acknowledgement live here. */
  namespace: string;
  /** This replica's name in the Lease, e.g. the pod name. */
  identity: string;
  leaseName: string;
  reconcile: ReconcileSettings;
  sweep: SweepSettings;
  /** Objects per list request, for the reconciler's and the sweeper's lists. */
  listPageSize: number;
  /** Reconcile shortly after a PVC change. */
  watchPvcs: boolean;
  /** Reconcile shortly after one of our restores' movers finishes, so its verdict follows in seconds. */
  watchReplicationDestinations: boolean;
  /** Called after each reconcile pass this replica runs as leader. */
  onReconciled?: (report: ReconcileReport) => void;
};

export type BackgroundControllers = {
  start(): void;
  stop(): Promise<void>;
  isLeader(): boolean;
};

/**
 * A watch that failed is started again after this long: soon enough that a change is rarely
 * missed for long (and the interval pass catches any), without spinning against an API server
 * that is down.
 */
const WATCH_RESTART_DELAY_MS = 1_000;

export function createBackgroundControllers(options: BackgroundControllerOptions): BackgroundControllers {
  const { log, reconcile, sweep } = options;
  CronExpressionParser.parse(sweep.schedule, { tz: "UTC" }); // a bad schedule fails at start-up
  const reconciler = createReconciler({
    objects: options.objects,
    policy: options.policy,
    log,
    metrics: options.metrics,
    ...(options.events ? { events: options.events } : {}),
    adoptKyverno: reconcile.adoptKyverno,
    ...(options.policySupport ? { policySupport: options.policySupport } : {}),
    ...(options.repositoryPolicyFor ? { repositoryPolicyFor: options.repositoryPolicyFor } : {}),
    writeConcurrency: reconcile.writeConcurrency,
    pageSize: options.listPageSize,
  });
  const sweeper = createSweeper({
    objects: options.objects,
    policy: options.policy,
    log,
    metrics: options.metrics,
    ...(options.events ? { events: options.events } : {}),
    namespace: options.namespace,
    gracePeriodMs: sweep.gracePeriodMs,
    dryRun: sweep.dryRun,
    deleteConcurrency: sweep.deleteConcurrency,
    pageSize: options.listPageSize,
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
        const wait = waitForIntervalOrWake(signal, reconcile.intervalMs);
        wake = wait.wake;
        if ((await wait.done) === "interval") reconcileRequested = true;
        wake = undefined;
      }
    };

    const sweepLoop = async (): Promise<void> => {
      // A sweep at once starts the grace-period clocks; deletions wait for later sweeps.
      await serialised<SweepReport>(() => sweeper.runPass(signal));
      while (!signal.aborted) {
        const next = CronExpressionParser.parse(sweep.schedule, { tz: "UTC", currentDate: new Date() }).next().getTime();
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
        eventPassDelayMs(lastPassMs, reconcile.watchDebounceMs, reconcile.intervalMs),
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
          await sleep(WATCH_RESTART_DELAY_MS, undefined, { signal }).catch(() => {});
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
      ...(options.watchPvcs ? [watchLoop(PERSISTENT_VOLUME_CLAIMS, BACKUP_LABEL, () => true)] : []),
      ...(options.watchReplicationDestinations ? [watchLoop(REPLICATION_DESTINATIONS, `${LABEL_MANAGED_BY}=${MANAGED_BY_GUARDIAN}`, isRestoreToJudge)] : []),
    ];
    await Promise.all(loops.map((loop) => loop.catch((error: unknown) => log.error({ err: error }, "background loop failed"))));
  }

  let leading: Promise<void> | undefined;
  const elector = createLeaderElector({
    objects: options.objects,
    namespace: options.namespace,
    leaseName: options.leaseName,
    identity: options.identity,
    leaseDurationMs: reconcile.leaseDurationMs,
    renewDeadlineMs: reconcile.renewDeadlineMs,
    retryPeriodMs: reconcile.retryPeriodMs,
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
