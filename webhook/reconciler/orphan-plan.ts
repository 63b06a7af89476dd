import type { Policy } from "../domain/policy.ts";
import { resolveProtection } from "../domain/protection.ts";
import { ANNOTATION_PVC_NAME, LABEL_MANAGED_BY, LABEL_PVC, MANAGED_BY_GUARDIAN } from "../domain/wire-names.ts";
import type { KubeObject } from "../kube/kube-objects.ts";

// Which of our objects the sweeper may delete, as a pure function of one complete list of each
// kind. An object is an orphan when its PVC is gone or no longer protected; it is deleted only
// after it has stayed an orphan for the grace period, counted from when this process first saw
// it so (a restart starts the count again: later, never earlier). A PVC recreated under the same
// name in the meantime makes the objects its own again. The breaker holds the whole sweep when
// it would delete more than max(10, 20%) of everything we manage: that is what a wrong view
// (an emptied namespace list, a bad policy) looks like, not ordinary churn.

export type OrphanReason = "pvc-gone" | "pvc-not-protected";

export type Orphan = {
  object: KubeObject;
  pvcName: string;
  reason: OrphanReason;
  /** When a sweep first found it orphaned; the grace period runs from here, not from its creation. */
  firstSeenOrphanedMs: number;
};

export type BreakerState = {
  /** Orphans due in this sweep, before the breaker decides. */
  wouldDelete: number;
  /** Every object carrying our managed-by label: the base of the breaker's fraction. */
  managedObjects: number;
  /** The most one sweep may delete without an acknowledgement. */
  limit: number;
  tripped: boolean;
};

export type OrphanPlan = {
  /** Orphans past the grace period: what the sweep deletes if the breaker allows. */
  due: Orphan[];
  /** Orphans still inside the grace period. */
  waiting: Orphan[];
  /** The first-seen clock to keep for the next sweep: only current orphans, by uid. */
  firstSeenOrphanedMs: Map<string, number>;
  breaker: BreakerState;
};

export type OrphanView = {
  nowMs: number;
  gracePeriodMs: number;
  policy: Pick<Policy, "tiers" | "excludedNamespaces">;
  /** Every PVC in the cluster (a complete list). */
  pvcs: readonly KubeObject[];
  /** Objects listed with our managed-by label, of every generated kind (complete lists). */
  managed: readonly KubeObject[];
  firstSeenOrphanedMs: ReadonlyMap<string, number>;
};

export const BREAKER_MIN_DELETIONS = 10;
export const BREAKER_FRACTION = 0.2;

export function breakerLimit(managedObjects: number): number {
  return Math.max(BREAKER_MIN_DELETIONS, Math.floor(BREAKER_FRACTION * managedObjects));
}

/** The PVC an object of ours serves: the annotation when the label value had to be hashed. */
export function pvcNameOf(object: KubeObject): string | undefined {
  return object.metadata.annotations?.[ANNOTATION_PVC_NAME] ?? object.metadata.labels?.[LABEL_PVC];
}

export function planOrphans(view: OrphanView): OrphanPlan {
  const pvcs = new Map<string, KubeObject>();
  for (const pvc of view.pvcs) pvcs.set(`${pvc.metadata.namespace}/${pvc.metadata.name}`, pvc);

  const due: Orphan[] = [];
  const waiting: Orphan[] = [];
  const firstSeen = new Map<string, number>();
  let managedObjects = 0;

  for (const object of view.managed) {
    // The list selects by label; this is the last line before a delete, so check again.
    if (object.metadata.labels?.[LABEL_MANAGED_BY] !== MANAGED_BY_GUARDIAN) continue;
    const uid = object.metadata.uid;
    if (uid === undefined) continue;
    managedObjects++;
    const namespace = object.metadata.namespace ?? "";
    const pvcName = pvcNameOf(object);
    // Without a PVC name we cannot tell whose it is, so it is never an orphan of ours to delete.
    if (pvcName === undefined) continue;
    const pvc = pvcs.get(`${namespace}/${pvcName}`);
    let reason: OrphanReason | undefined;
    if (pvc === undefined) reason = "pvc-gone";
    else if (resolveProtection(pvc.metadata.labels, namespace, view.policy).kind !== "protected") reason = "pvc-not-protected";
    if (reason === undefined) continue;

    const firstSeenOrphanedMs = view.firstSeenOrphanedMs.get(uid) ?? view.nowMs;
    firstSeen.set(uid, firstSeenOrphanedMs);
    const orphan: Orphan = { object, pvcName, reason, firstSeenOrphanedMs };
    if (view.nowMs - firstSeenOrphanedMs >= view.gracePeriodMs) due.push(orphan);
    else waiting.push(orphan);
  }

  const limit = breakerLimit(managedObjects);
  return {
    due,
    waiting,
    firstSeenOrphanedMs: firstSeen,
    breaker: { wouldDelete: due.length, managedObjects, limit, tripped: due.length > limit },
  };
}
