import { readBackupAnnotations } from "../domain/backup-annotations.ts";
import { resolveSchedule } from "../domain/backup-schedule.ts";
import {
  backupTargetOf,
  desiredReplicationDestination,
  desiredReplicationSource,
  desiredSecret,
  isDueForFirstBackup,
  restoreTargetOfDestination,
} from "../domain/desired-resources.ts";
import type { Policy } from "../domain/policy.ts";
import { resolveProtection } from "../domain/protection.ts";
import type { PersistentVolumeClaim } from "../domain/pvc.ts";
import { ownershipOf } from "../domain/ownership.ts";
import { ANNOTATION_BOUND_PVC_UID } from "../domain/wire-names.ts";
import type { KubeObject } from "../kube/kube-objects.ts";
import { observeBound } from "./bound-observation.ts";
import { planDrift } from "./drift-plan.ts";
import { detectEarlierIncarnation } from "./pvc-incarnation.ts";

// What one reconcile pass must write, computed from one list of each kind: a pure function, so
// every rule is table-tested and a pass costs a request per kind plus one per difference.

export type GeneratedKind = "Secret" | "ReplicationDestination" | "ReplicationSource";

export type PlannedWrite = {
  /**
   * create: POST, fails if the name is taken. apply: server-side apply of fields we own.
   * adopt: forced apply over an object the Kyverno policy generated. delete: the listed object
   * itself (its uid is the precondition), for a ReplicationSource of an earlier PVC.
   */
  action: "create" | "apply" | "adopt" | "delete";
  kind: GeneratedKind;
  /** What to write; for a delete, the live object as listed. */
  object: KubeObject;
  pvc: { namespace: string; name: string; uid?: string };
  /** Short and lowercase, for logs. */
  reason: string;
  /** Set on the write that schedules a PVC's first backup. */
  schedulesFirstBackup?: boolean;
};

export type PlanNote = { namespace: string; pvcName: string; note: string };

export type ReconcilePlan = {
  writes: PlannedWrite[];
  /** Protected PVCs whose objects could not be planned, or whose objects belong to someone else. */
  notes: PlanNote[];
  protectedPvcs: number;
  /** Each protected PVC and its tier: what the backup-age metrics are computed over. */
  inventory: ProtectedPvc[];
  /** Protected PVCs still waiting to be Bound, or for the first-backup delay. */
  awaitingFirstBackup: number;
};

export type ProtectedPvc = { namespace: string; name: string; tier: string; createdAtMs?: number };

export type ReconcileView = {
  nowMs: number;
  policy: Pick<Policy, "tiers" | "excludedNamespaces" | "resources" | "nfs" | "firstBackupDelayMs">;
  /** PVCs carrying the backup label. */
  pvcs: readonly KubeObject[];
  /** Objects carrying the volsync.backup/pvc label, of any manager. */
  secrets: readonly KubeObject[];
  replicationDestinations: readonly KubeObject[];
  replicationSources: readonly KubeObject[];
  /** The source Secret's data; undefined when it could not be read (Secrets are then left alone). */
  sourceSecretData: Readonly<Record<string, string>> | undefined;
  /** Take over objects the Kyverno policy generated for protected PVCs. */
  adoptKyverno: boolean;
  /**
   * With more than one repository: the one serving a namespace, its policy (mover volume) and its
   * source Secret's data. Absent: `policy` and `sourceSecretData` serve every namespace.
   */
  repositoryFor?: (namespace: string) => RepositoryView | { ok: false; reason: string };
};

export type RepositoryView = {
  ok: true;
  policy: Pick<Policy, "resources" | "nfs">;
  /** undefined when the source Secret could not be read: the Secret clone is then left alone. */
  sourceSecretData: Readonly<Record<string, string>> | undefined;
};

const keyOf = (namespace: string | undefined, name: string): string => `${namespace ?? ""}/${name}`;

function indexByName(objects: readonly KubeObject[]): Map<string, KubeObject> {
  const index = new Map<string, KubeObject>();
  for (const object of objects) index.set(keyOf(object.metadata.namespace, object.metadata.name), object);
  return index;
}

export function planReconcile(view: ReconcileView): ReconcilePlan {
  const secrets = indexByName(view.secrets);
  const destinations = indexByName(view.replicationDestinations);
  const sources = indexByName(view.replicationSources);
  const plan: ReconcilePlan = { writes: [], notes: [], protectedPvcs: 0, inventory: [], awaitingFirstBackup: 0 };

  for (const pvcObject of view.pvcs) {
    const pvc = pvcObject as unknown as PersistentVolumeClaim;
    const name = pvcObject.metadata.name;
    const namespace = pvcObject.metadata.namespace ?? "";
    // A PVC on its way out gets nothing new; the sweeper handles what it leaves behind.
    if (pvcObject.metadata.deletionTimestamp) continue;
    const protection = resolveProtection(pvcObject.metadata.labels, namespace, view.policy);
    if (protection.kind !== "protected") continue;
    plan.protectedPvcs++;
    const createdAtMs = Date.parse(pvcObject.metadata.creationTimestamp ?? "");
    plan.inventory.push({ namespace, name, tier: protection.tierName, ...(Number.isNaN(createdAtMs) ? {} : { createdAtMs }) });

    const pvcRef = { namespace, name, ...(pvcObject.metadata.uid === undefined ? {} : { uid: pvcObject.metadata.uid }) };
    const annotations = readBackupAnnotations(pvcObject.metadata.annotations);
    const target = backupTargetOf(pvc, name, namespace);
    const note = (text: string): void => void plan.notes.push({ namespace, pvcName: name, note: text });
    // A namespace only ever gets the credentials of the repository it is mapped to; when that
    // cannot be told, nothing is written for its PVCs until it can.
    const repository = view.repositoryFor ? view.repositoryFor(namespace) : { ok: true as const, policy: view.policy, sourceSecretData: view.sourceSecretData };
    if (!repository.ok) {
      note(`no repository can be chosen (${repository.reason}); nothing is written for it`);
      continue;
    }

    const consider = (kind: GeneratedKind, desired: KubeObject, live: KubeObject | undefined, extra: Partial<PlannedWrite> = {}): boolean => {
      if (live === undefined) {
        plan.writes.push({ action: "create", kind, object: desired, pvc: pvcRef, reason: `${kind} missing`, ...extra });
        return true;
      }
      const ownership = ownershipOf(live.metadata.labels);
      if (ownership === "kyverno") {
        if (view.adoptKyverno) {
          plan.writes.push({ action: "adopt", kind, object: desired, pvc: pvcRef, reason: `${kind} generated by kyverno` });
        } else {
          note(`${kind} ${live.metadata.name} is managed by kyverno; adoption is off, so it is left alone`);
        }
        return false;
      }
      if (ownership === "foreign") {
        note(`${kind} ${live.metadata.name} exists and is not managed by pvc-guardian; it is left alone`);
        return false;
      }
      const drift = planDrift(desired, live);
      if (drift.state === "drifted") {
        plan.writes.push({ action: "apply", kind, object: desired, pvc: pvcRef, reason: `${kind} drifted: ${drift.paths.slice(0, 5).join(", ")}` });
      }
      return false;
    };

    // The Secret clone, when the source could be read.
    const liveSecret = secrets.get(keyOf(namespace, target.names.secret));
    if (repository.sourceSecretData === undefined) note("source Secret unreadable; the Secret clone is not checked");
    else consider("Secret", desiredSecret(target, repository.sourceSecretData) as unknown as KubeObject, liveSecret);

    // The ReplicationDestination. Whether it restores (paused or not) was decided at admission
    // from the repository; the reconciler has no catalog answer, so it keeps the live value and
    // recreates a missing RD paused: the PVC exists already, so there is nothing to populate.
    const liveDestination = destinations.get(keyOf(namespace, target.names.replicationDestination));
    const livePaused = (liveDestination?.["spec"] as { paused?: unknown } | undefined)?.paused;
    // Likewise the restore admission pinned on it (point, snapshot, source identity): changing
    // any of them before the mover has run would restore something other than what was decided.
    const liveRestore =
      liveDestination !== undefined && ownershipOf(liveDestination.metadata.labels) === "ours" ? restoreTargetOfDestination(liveDestination) : undefined;
    const destinationTarget = liveRestore === undefined ? target : { ...target, restore: liveRestore };
    const destination = desiredReplicationDestination(destinationTarget, repository.policy, {
      paused: typeof livePaused === "boolean" ? livePaused : true,
    }) as unknown as KubeObject;
    const recordedObservation = ownershipOf((liveDestination ?? destination).metadata.labels) === "ours" ? liveDestination?.metadata.annotations : undefined;
    const bound = observeBound({ uid: pvcObject.metadata.uid, phase: pvc.status?.phase }, recordedObservation, view.nowMs);
    if (bound) destination.metadata.annotations = { ...destination.metadata.annotations, ...bound.annotations };
    const destinationCreated = consider("ReplicationDestination", destination, liveDestination);
    const destinationUsable =
      destinationCreated ||
      (liveDestination !== undefined && ownershipOf(liveDestination.metadata.labels) === "ours") ||
      (liveDestination !== undefined && ownershipOf(liveDestination.metadata.labels) === "kyverno" && view.adoptKyverno);

    // The ReplicationSource: repaired whenever it exists, created only once the PVC has been
    // Bound for the first-backup delay, as recorded on our own ReplicationDestination.
    const schedule = resolveSchedule(annotations.scheduleOverride ?? protection.tier.schedule, `${namespace}/${name}`);
    const liveSource = sources.get(keyOf(namespace, target.names.replicationSource));
    if (!schedule.ok) {
      note(`backup schedule unusable (${schedule.problem}); the ReplicationSource is not written`);
      continue;
    }
    const source = desiredReplicationSource(target, repository.policy, {
      schedule: schedule.schedule,
      retain: protection.tier.retain,
    }) as unknown as KubeObject;
    if (liveSource !== undefined) {
      // An RS scheduled for an earlier PVC of this name must not back up this one: it goes now,
      // and the new PVC waits out its own delay (the RD's observation restarts above).
      const sourceOwnership = ownershipOf(liveSource.metadata.labels);
      const earlier = detectEarlierIncarnation({
        pvc: { uid: pvcObject.metadata.uid, creationTimestamp: pvcObject.metadata.creationTimestamp },
        recordedPvcUid: recordedObservation?.[ANNOTATION_BOUND_PVC_UID],
        source: { creationTimestamp: liveSource.metadata.creationTimestamp },
      });
      if (earlier !== undefined && (sourceOwnership === "ours" || (sourceOwnership === "kyverno" && view.adoptKyverno))) {
        plan.writes.push({
          action: "delete",
          kind: "ReplicationSource",
          object: liveSource,
          pvc: pvcRef,
          reason: `ReplicationSource of an earlier PVC: ${earlier}`,
        });
        plan.awaitingFirstBackup++;
        continue;
      }
      if (earlier !== undefined)
        note(`ReplicationSource ${liveSource.metadata.name} may belong to an earlier PVC (${earlier}) but is not managed by pvc-guardian; it is left alone`);
      consider("ReplicationSource", source, liveSource);
      continue;
    }
    if (!destinationUsable || !isDueForFirstBackup(bound?.observedAtMs, view.nowMs, view.policy.firstBackupDelayMs)) {
      plan.awaitingFirstBackup++;
      continue;
    }
    consider("ReplicationSource", source, undefined, { schedulesFirstBackup: true, reason: "first backup due" });
  }
  return plan;
}
