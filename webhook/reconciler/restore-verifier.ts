// The reconciler's restore verification: for each ReplicationDestination we activated for a
// restore (it carries the pinned snapshot id) whose mover has finished and that has no verdict
// yet, judge the mover's report against the pinned snapshot (domain/restore-verification.ts),
// write the verdict onto the RD, tell the PVC's owner with an Event, and count it.
//
// The verdict is written with a plain update guarded by the resourceVersion, not with the
// reconciler's server-side apply: fields an update sets belong to the update, so the apply that
// repairs the RD never removes them, and a verdict once written is never judged again.

import { verifyRestore, type RestoreVerdict } from "../domain/restore-verification.ts";
import {
  ANNOTATION_PVC_NAME,
  ANNOTATION_RESTORE_SNAPSHOT_ID,
  ANNOTATION_RESTORE_SNAPSHOT_STATS,
  ANNOTATION_RESTORE_VERDICT,
  ANNOTATION_RESTORE_VERDICT_DETAIL,
  LABEL_MANAGED_BY,
  LABEL_PVC,
  MANAGED_BY_GUARDIAN,
} from "../domain/wire-names.ts";
import { REPLICATION_DESTINATIONS, isConflict, type KubeObject, type KubeObjects } from "../kube/kube-objects.ts";
import type { PvcEvent, PvcEventRecorder } from "../kube/pvc-events.ts";
import { forEachConcurrently } from "../domain/bounded-concurrency.ts";
import type { Logger } from "../domain/logger.ts";
import type { CounterPort } from "./reconciler-metrics.ts";

const MAX_CONFLICT_RETRIES = 3;

export type RestoreVerifierDeps = {
  objects: KubeObjects;
  log: Logger;
  /** pvc_guardian_restore_verifications_total{verdict} */
  restoreVerifications: CounterPort;
  events?: PvcEventRecorder;
  /** Verdict writes in flight at once. */
  writeConcurrency: number;
};

/** What verifyFinishedRestores did in one pass. */
export type RestoreVerificationReport = { judged: number; failed: number };

/**
 * Whether a ReplicationDestination is a restore we started whose verdict is still open. Only
 * ours: the snapshot-id annotation on someone else's RD is not our word.
 */
export function awaitsRestoreVerdict(destination: KubeObject): boolean {
  const annotations = destination.metadata.annotations ?? {};
  return (
    destination.metadata.labels?.[LABEL_MANAGED_BY] === MANAGED_BY_GUARDIAN &&
    annotations[ANNOTATION_RESTORE_SNAPSHOT_ID] !== undefined &&
    annotations[ANNOTATION_RESTORE_VERDICT] === undefined
  );
}

function judge(destination: KubeObject) {
  const annotations = destination.metadata.annotations ?? {};
  return verifyRestore({
    snapshotId: annotations[ANNOTATION_RESTORE_SNAPSHOT_ID] ?? "",
    pinnedStats: annotations[ANNOTATION_RESTORE_SNAPSHOT_STATS],
    moverStatus: (destination["status"] as { latestMoverStatus?: unknown } | undefined)?.latestMoverStatus,
  });
}

const eventReasons: Record<RestoreVerdict, { type: PvcEvent["type"]; reason: PvcEvent["reason"]; advice: string }> = {
  verified: { type: "Normal", reason: "RestoreVerified", advice: "" },
  mismatch: {
    type: "Warning",
    reason: "RestoreMismatch",
    advice:
      "The volume may not hold the chosen snapshot: compare its contents with the snapshot before the application relies on it (README: PvcGuardianRestoreNotVerified).",
  },
  empty: {
    type: "Warning",
    reason: "RestoreEmpty",
    advice: "Nothing was restored: stop the application before it writes, then restore the snapshot again (README: PvcGuardianRestoreNotVerified).",
  },
  failed: {
    type: "Warning",
    reason: "RestoreFailed",
    advice: "Read the mover Job's logs and the ReplicationDestination's status (README: PvcGuardianRestoreNotVerified).",
  },
  unverified: {
    type: "Warning",
    reason: "RestoreUnverified",
    advice:
      "Check the volume's contents by hand; set MOVER_LOG_DEBUG=true on the VolSync controller so later restores can be verified (README: PvcGuardianRestoreNotVerified).",
  },
};

export function createRestoreVerifier(deps: RestoreVerifierDeps) {
  const { objects } = deps;
  const verifierLog = deps.log.child({ controller: "restore-verifier" });

  /** Writes the verdict; undefined when the RD went away, stopped waiting, or its mover is not done. */
  async function writeVerdict(listed: KubeObject, signal: AbortSignal | undefined): Promise<{ verdict: RestoreVerdict; detail: string } | undefined> {
    let live: KubeObject | undefined = listed;
    for (let attempt = 0; attempt <= MAX_CONFLICT_RETRIES; attempt++) {
      if (live === undefined || !awaitsRestoreVerdict(live)) return undefined;
      const outcome = judge(live);
      if (!outcome.finished) return undefined;
      try {
        await objects.replace(
          {
            ...live,
            metadata: {
              ...live.metadata,
              annotations: { ...live.metadata.annotations, [ANNOTATION_RESTORE_VERDICT]: outcome.verdict, [ANNOTATION_RESTORE_VERDICT_DETAIL]: outcome.detail },
            },
          },
          signal,
        );
        return { verdict: outcome.verdict, detail: outcome.detail };
      } catch (error) {
        if (!isConflict(error)) throw error;
      }
      live = await objects.get(REPLICATION_DESTINATIONS, listed.metadata.namespace, listed.metadata.name, signal);
    }
    throw new Error(`ReplicationDestination ${listed.metadata.namespace}/${listed.metadata.name} kept changing while its restore verdict was being written`);
  }

  return {
    /** `pvcs` (the pass's list) give the Events their PVC's uid; `reconcileId` names the pass in the log. */
    async verifyFinishedRestores(
      destinations: readonly KubeObject[],
      pvcs: readonly KubeObject[],
      signal?: AbortSignal,
      reconcileId?: string,
    ): Promise<RestoreVerificationReport> {
      const log = reconcileId === undefined ? verifierLog : verifierLog.child({ reconcileId });
      const report: RestoreVerificationReport = { judged: 0, failed: 0 };
      const candidates = destinations.filter((destination) => awaitsRestoreVerdict(destination) && judge(destination).finished);
      const pvcUids = new Map(pvcs.map((pvc) => [`${pvc.metadata.namespace}/${pvc.metadata.name}`, pvc.metadata.uid]));
      await forEachConcurrently(candidates, deps.writeConcurrency, async (destination) => {
        const namespace = destination.metadata.namespace!;
        const { name } = destination.metadata;
        const pvcName = destination.metadata.annotations?.[ANNOTATION_PVC_NAME] ?? destination.metadata.labels?.[LABEL_PVC] ?? name;
        try {
          const written = await writeVerdict(destination, signal);
          if (written === undefined) return;
          report.judged++;
          deps.restoreVerifications.inc({ verdict: written.verdict });
          const snapshotId = destination.metadata.annotations?.[ANNOTATION_RESTORE_SNAPSHOT_ID];
          const level = written.verdict === "verified" ? "info" : "warn";
          log[level](
            { kind: "ReplicationDestination", namespace, name, pvc: pvcName, snapshot: snapshotId, verdict: written.verdict, detail: written.detail },
            "restore verdict written",
          );
          const event = eventReasons[written.verdict];
          const pvcUid = pvcUids.get(`${namespace}/${pvcName}`);
          void deps.events?.record({
            namespace,
            pvcName,
            ...(pvcUid === undefined ? {} : { pvcUid }),
            type: event.type,
            reason: event.reason,
            action: "Verify",
            note: `${written.detail}${event.advice === "" ? "" : ` ${event.advice}`}`,
          });
        } catch (error) {
          report.failed++;
          log.warn({ kind: "ReplicationDestination", namespace, name, pvc: pvcName, err: error }, "restore verdict not written");
        }
      });
      return report;
    },
  };
}
