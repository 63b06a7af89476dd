import { randomUUID } from "node:crypto";
import type { Policy } from "../domain/policy.ts";
import {
  LABEL_MANAGED_BY,
  MANAGED_BY_GUARDIAN,
  SWEEP_ACKNOWLEDGEMENT_CONFIGMAP,
  SWEEP_ACKNOWLEDGEMENT_EXPIRES_AT_KEY,
  SWEEP_ACKNOWLEDGEMENT_MAX_DELETIONS_KEY,
} from "../domain/wire-names.ts";
import {
  CONFIG_MAPS,
  PERSISTENT_VOLUME_CLAIMS,
  REPLICATION_DESTINATIONS,
  REPLICATION_SOURCES,
  SECRETS,
  resourceKindOf,
  type KubeObjects,
} from "../kube/kube-objects.ts";
import type { PvcEventRecorder } from "../kube/pvc-events.ts";
import { forEachConcurrently } from "../domain/bounded-concurrency.ts";
import { planOrphans, type Orphan } from "./orphan-plan.ts";
import type { Logger } from "../domain/logger.ts";
import type { ReconcilerMetrics } from "./reconciler-metrics.ts";
import { readSweepAcknowledgement, releasesBreaker } from "./sweep-acknowledgement.ts";
import { errorMessage } from "../domain/error-message.ts";

// The sweeper deletes what we generated for PVCs that are gone or no longer protected. It only
// ever acts on a complete view (every list whole), only on objects labelled as ours, only after
// the grace period, and only on the exact object it listed (uid and resourceVersion
// preconditions). It never touches the Kopia repository: removing a label stops backups, the
// data stays.

export type SweeperDeps = {
  objects: KubeObjects;
  policy: Pick<Policy, "tiers" | "excludedNamespaces">;
  log: Logger;
  metrics: ReconcilerMetrics;
  events?: PvcEventRecorder;
  /** pvc-guardian's own namespace: where the acknowledgement ConfigMap lives. */
  namespace: string;
  gracePeriodMs: number;
  /** Report what would be deleted, delete nothing. */
  dryRun: boolean;
  pageSize: number;
  deleteConcurrency: number;
  now?: () => number;
};

export type SweepReport = {
  outcome: "ok" | "partial" | "error" | "held" | "dry-run";
  managedObjects: number;
  /** Orphans past the grace period (what was, or would have been, deleted). */
  due: Array<{ kind: string; namespace: string; name: string; pvcName: string; reason: string }>;
  waiting: number;
  deleted: number;
  /** Objects replaced or changed since they were listed, or already gone: left alone. */
  skipped: number;
  failed: number;
  problem?: string;
};

export type Sweeper = { runPass(signal?: AbortSignal): Promise<SweepReport> };

const MAX_HOLD_EVENTS = 20;

export function createSweeper(deps: SweeperDeps): Sweeper {
  const { objects, policy, metrics } = deps;
  const now = deps.now ?? Date.now;
  const { pageSize } = deps;
  // Per object uid, when this process first saw it orphaned. Memory only, on purpose: a restart
  // starts every grace period again, which can only delay a deletion.
  let firstSeenOrphanedMs = new Map<string, number>();
  let lastHeldCount: number | undefined;

  const describe = (orphan: Orphan) => ({
    kind: orphan.object.kind,
    namespace: orphan.object.metadata.namespace ?? "",
    name: orphan.object.metadata.name,
    pvcName: orphan.pvcName,
    reason: orphan.reason,
  });

  async function announceHold(report: SweepReport, limit: number, due: Orphan[]): Promise<void> {
    if (lastHeldCount === due.length) return; // already said, for this same plan size
    lastHeldCount = due.length;
    const note =
      `The sweep would delete ${due.length} of ${report.managedObjects} objects pvc-guardian manages (limit ${limit}) and is held. ` +
      `If this is intended, create ConfigMap ${deps.namespace}/${SWEEP_ACKNOWLEDGEMENT_CONFIGMAP} with ${SWEEP_ACKNOWLEDGEMENT_MAX_DELETIONS_KEY}: "${due.length}" and ${SWEEP_ACKNOWLEDGEMENT_EXPIRES_AT_KEY}: <RFC 3339 time>.`;
    const pvcs = new Map<string, { namespace: string; pvcName: string }>();
    for (const orphan of due)
      pvcs.set(`${orphan.object.metadata.namespace}/${orphan.pvcName}`, { namespace: orphan.object.metadata.namespace ?? "", pvcName: orphan.pvcName });
    await Promise.all(
      [...pvcs.values()]
        .slice(0, MAX_HOLD_EVENTS)
        .map((pvc) => deps.events?.record({ ...pvc, type: "Warning", reason: "SweepHeldByBreaker", action: "Delete", note })),
    );
  }

  return {
    async runPass(signal) {
      const log = deps.log.child({ controller: "sweeper", reconcileId: randomUUID() });
      const report: SweepReport = { outcome: "ok", managedObjects: 0, due: [], waiting: 0, deleted: 0, skipped: 0, failed: 0 };
      try {
        const ours = { labelSelector: `${LABEL_MANAGED_BY}=${MANAGED_BY_GUARDIAN}`, pageSize };
        const lists = await Promise.all([
          objects.list(PERSISTENT_VOLUME_CLAIMS, { pageSize }, signal),
          objects.list(SECRETS, ours, signal),
          objects.list(REPLICATION_DESTINATIONS, ours, signal),
          objects.list(REPLICATION_SOURCES, ours, signal),
        ]);
        const partial = lists.find((list) => !list.complete);
        if (partial && !partial.complete) {
          // A PVC missing from a partial list would look deleted: never act on half a view.
          report.outcome = "partial";
          report.problem = partial.error;
          metrics.sweepPasses.inc({ outcome: "partial" });
          log.warn({ problem: partial.error }, "sweep skipped: a list was incomplete");
          return report;
        }
        const [pvcs, ...managedLists] = lists;
        const plan = planOrphans({
          nowMs: now(),
          gracePeriodMs: deps.gracePeriodMs,
          policy,
          pvcs: pvcs!.items,
          managed: managedLists.flatMap((list) => list.items),
          firstSeenOrphanedMs,
        });
        firstSeenOrphanedMs = plan.firstSeenOrphanedMs;
        report.managedObjects = plan.breaker.managedObjects;
        report.due = plan.due.map(describe);
        report.waiting = plan.waiting.length;

        if (plan.breaker.tripped) {
          const configMap = await objects.get(CONFIG_MAPS, deps.namespace, SWEEP_ACKNOWLEDGEMENT_CONFIGMAP, signal);
          const acknowledgement = readSweepAcknowledgement(configMap?.["data"] as Record<string, string> | undefined, now());
          if (!releasesBreaker(acknowledgement, plan.breaker.wouldDelete)) {
            report.outcome = "held";
            report.problem =
              `would delete ${plan.breaker.wouldDelete} of ${plan.breaker.managedObjects} managed objects (limit ${plan.breaker.limit}); ` +
              `acknowledgement ${acknowledgement.state}${acknowledgement.state === "invalid" ? `: ${acknowledgement.problem}` : ""}`;
            metrics.sweepPasses.inc({ outcome: "held" });
            log.error(
              {
                wouldDelete: plan.breaker.wouldDelete,
                managedObjects: plan.breaker.managedObjects,
                limit: plan.breaker.limit,
                acknowledgement: acknowledgement.state,
                due: report.due.slice(0, 50),
              },
              "sweep held by the mass-deletion breaker",
            );
            await announceHold(report, plan.breaker.limit, plan.due);
            return report;
          }
          log.warn({ wouldDelete: plan.breaker.wouldDelete, limit: plan.breaker.limit }, "mass-deletion breaker released by acknowledgement");
        }
        lastHeldCount = undefined;

        if (deps.dryRun) {
          report.outcome = "dry-run";
          metrics.sweepPasses.inc({ outcome: "dry-run" });
          log.info({ due: report.due, waiting: report.waiting }, "sweep dry run: would delete");
          return report;
        }

        // The first transport failure stops the rest: the API server is going away, and each
        // remaining delete would only wait out its retries.
        const stop = new AbortController();
        const deleteSignal = signal ? AbortSignal.any([signal, stop.signal]) : stop.signal;
        await forEachConcurrently(plan.due, deps.deleteConcurrency, async (orphan) => {
          if (deleteSignal.aborted) return;
          const { metadata } = orphan.object;
          try {
            const outcome = await objects.delete(
              resourceKindOf(orphan.object),
              metadata.namespace,
              metadata.name,
              { uid: metadata.uid!, ...(metadata.resourceVersion === undefined ? {} : { resourceVersion: metadata.resourceVersion }) },
              deleteSignal,
            );
            if (outcome === "deleted") {
              report.deleted++;
              metrics.objectsDeleted.inc({ kind: orphan.object.kind });
              firstSeenOrphanedMs.delete(metadata.uid!);
              log.info(
                { kind: orphan.object.kind, namespace: metadata.namespace, name: metadata.name, pvc: orphan.pvcName, reason: orphan.reason },
                "orphan deleted",
              );
            } else {
              report.skipped++;
            }
          } catch (error) {
            report.failed++;
            stop.abort(error);
            log.warn({ kind: orphan.object.kind, namespace: metadata.namespace, name: metadata.name, err: error }, "orphan delete failed");
          }
        });
        report.outcome = report.failed > 0 || report.deleted + report.skipped < plan.due.length ? "error" : "ok";
        metrics.sweepPasses.inc({ outcome: report.outcome });
        log.info(
          {
            managedObjects: report.managedObjects,
            due: report.due.length,
            deleted: report.deleted,
            skipped: report.skipped,
            failed: report.failed,
            waiting: report.waiting,
          },
          "sweep done",
        );
        return report;
      } catch (error) {
        report.outcome = "error";
        report.problem = errorMessage(error);
        metrics.sweepPasses.inc({ outcome: "error" });
        log.error({ err: error }, "sweep failed");
        return report;
      }
    },
  };
}
