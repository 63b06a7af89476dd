import { setTimeout as sleep } from "node:timers/promises";
import type { BackupObjectGenerator, GenerationRequest, GenerationResult } from "../admission/generation-port.ts";
import { backupTargetOf, desiredReplicationDestination, restoreTargetOf } from "../domain/desired-resources.ts";
import { mayManage, ownershipOf } from "../domain/ownership.ts";
import type { Policy } from "../domain/policy.ts";
import type { PolicySupport } from "../domain/policy-support.ts";
import { ANNOTATION_BOUND_OBSERVED_AT, ANNOTATION_BOUND_PVC_UID, ANNOTATION_RESTORE_VERDICT, LABEL_MANAGED_BY } from "../domain/wire-names.ts";
import {
  PERSISTENT_VOLUME_CLAIMS,
  REPLICATION_DESTINATIONS,
  REPLICATION_SOURCES,
  isAlreadyExists,
  isConflict,
  resourceKindOf,
  type KubeObject,
  type KubeObjects,
} from "../kube/kube-objects.ts";
import type { PvcEventRecorder } from "../kube/pvc-events.ts";
import { planDrift } from "./drift-plan.ts";
import type { Logger } from "../domain/logger.ts";
import type { ReconcilerMetrics } from "./reconciler-metrics.ts";
import { errorMessage } from "../domain/error-message.ts";

// Generate on admission (README, "How the pieces fit"): the validator, having allowed a protected PVC, calls
// this to create its ReplicationDestination before the PVC is stored, so a restoring PVC finds
// its volume populator's source at once. Creates never take over an object someone else owns;
// repairs are server-side applies of our fields only. On the restore path an RD that already
// restored an earlier image is deleted (only that exact object, by uid) and made again, or the
// populator would fill the new PVC from old data.
//
// Nothing here may rest on the review alone: any pod can reach the webhook port and send a
// well-formed review the API server never sent (see README, Security). So admission writes no
// credentials: the Secret clone comes from the reconciler, which only acts on PVCs it lists from
// the API server (a pass follows every PVC event within about a second; the mover waits for it).
// And an existing RD is replaced or re-aimed for a restore only while no PVC of that name exists:
// a live PVC means this CREATE is about to fail, or the review is forged.
//
// A PVC being created cannot have a legitimate ReplicationSource yet (reconcile-plan.ts: only once
// this PVC has been Bound for the first-backup delay). One named like ours can only be left from
// an earlier PVC of the same name, still inside the sweeper's grace period, and it would back up
// this new, empty or half-restored volume on its schedule. So generation deletes it (that exact
// object, by uid) and removes the earlier PVC's bound observation from the RD, so the delay
// starts again. Both only when no PVC of that name exists now: if one does, this CREATE is about
// to fail with AlreadyExists and the RS belongs to that live PVC.
// On failure: the restore path denies, like any failed write (the restore must not start with an
// RS aimed at the volume it fills); the fresh path allows with a warning and leaves the RD's
// record of the earlier PVC's uid in place, which is how the reconciler finds and deletes the RS
// on its next pass (reconcile-plan.ts). The same holds if the earlier PVC disappears between our
// check and the API server storing this one: the reconciler catches it.

export type AdmissionGeneratorDeps = {
  objects: KubeObjects;
  policy: Pick<Policy, "resources" | "nfs">;
  /** With more than one repository: the policy of the one serving a namespace (its mover volume). */
  policyFor?: (namespace: string) => { ok: true; policy: Pick<Policy, "resources" | "nfs"> } | { ok: false; reason: string };
  log: Logger;
  metrics: ReconcilerMetrics;
  events?: PvcEventRecorder;
  /** Take over objects Kyverno generated for a PVC (policy reconcile.adoptKyverno). */
  adoptKyverno: boolean;
  /** How often to check that a replaced RD is gone. */
  replacePollMs: number;
  /**
   * Whether the installed VolSync can run what the policy asks for (NFS mover volumes); when it
   * cannot, nothing is written: such objects would be refused, or pruned into Jobs that never run.
   */
  policySupport?: () => PolicySupport;
};

type EnsureOutcome = "created" | "updated" | "unchanged";

/** What became of a ReplicationSource named like ours when the PVC was admitted. */
type EarlierSource = "none" | "deleted" | "left-to-its-pvc" | "not-ours";

const MAX_PRECONDITION_RETRIES = 3;

class GenerationProblem extends Error {}

export function createAdmissionGenerator(deps: AdmissionGeneratorDeps): BackupObjectGenerator {
  const { objects, policy, metrics, replacePollMs } = deps;
  const log = deps.log.child({ controller: "admission-generator" });

  /**
   * Creates `desired`, or brings a live object we may write up to it. `keptAnnotations` are
   * carried over from the live object, so the apply neither drops nor counts them as drift.
   */
  async function ensure(
    desired: KubeObject,
    signal: AbortSignal,
    keptAnnotations: readonly string[] = [],
  ): Promise<{ outcome: EnsureOutcome; live: KubeObject }> {
    const kind = resourceKindOf(desired);
    const { name, namespace } = desired.metadata;
    try {
      return { outcome: "created", live: await objects.create(desired, signal) };
    } catch (error) {
      if (!isAlreadyExists(error)) throw error;
    }
    const live = await objects.get(kind, namespace, name, signal);
    if (live === undefined) return { outcome: "created", live: await objects.create(desired, signal) };
    const managedBy = live.metadata.labels?.[LABEL_MANAGED_BY];
    const adoptable = ownershipOf(live.metadata.labels) === "kyverno" && deps.adoptKyverno;
    if (!mayManage(live.metadata.labels, deps.adoptKyverno)) {
      throw new GenerationProblem(`${kind.kind} ${namespace}/${name} already exists and is not managed by pvc-guardian (managed-by: ${managedBy ?? "none"})`);
    }
    const kept = Object.entries(live.metadata.annotations ?? {}).filter(([key]) => keptAnnotations.includes(key));
    if (kept.length > 0)
      desired = { ...desired, metadata: { ...desired.metadata, annotations: { ...desired.metadata.annotations, ...Object.fromEntries(kept) } } };
    if (!adoptable && planDrift(desired, live).state === "in-sync") return { outcome: "unchanged", live };
    return { outcome: "updated", live: await objects.apply(desired, { force: true }, signal) };
  }

  /** Deletes the ReplicationSource an earlier PVC of this name left, when no PVC of the name exists. */
  async function retireEarlierSource(namespace: string, name: string, isNameTaken: () => Promise<boolean>, signal: AbortSignal): Promise<EarlierSource> {
    for (let attempt = 0; attempt < MAX_PRECONDITION_RETRIES; attempt++) {
      const live = await objects.get(REPLICATION_SOURCES, namespace, name, signal);
      if (live === undefined) return "none";
      if (!mayManage(live.metadata.labels, deps.adoptKyverno)) return "not-ours";
      if (await isNameTaken()) return "left-to-its-pvc";
      const deleted = await objects.delete(REPLICATION_SOURCES, namespace, name, { uid: live.metadata.uid! }, signal);
      if (deleted === "deleted") {
        log.info({ kind: "ReplicationSource", namespace, name, uid: live.metadata.uid }, "replication source of an earlier pvc deleted");
        metrics.objectsDeleted.inc({ kind: "ReplicationSource" });
        return "deleted";
      }
      if (deleted === "not-found") return "none";
      // Replaced between the read and the delete: look at the replacement.
    }
    throw new GenerationProblem(`ReplicationSource ${namespace}/${name} of an earlier PVC kept changing while it was being deleted`);
  }

  /** Removes the earlier PVC's bound observation from the RD, so the first-backup delay starts again. */
  async function resetBoundObservation(destination: KubeObject, signal: AbortSignal): Promise<boolean> {
    let live: KubeObject | undefined = destination;
    for (let attempt = 0; attempt < MAX_PRECONDITION_RETRIES; attempt++) {
      if (live === undefined) return false;
      const { [ANNOTATION_BOUND_OBSERVED_AT]: observedAt, [ANNOTATION_BOUND_PVC_UID]: pvcUid, ...kept } = live.metadata.annotations ?? {};
      if (observedAt === undefined && pvcUid === undefined) return false;
      try {
        // A plain update, not an apply: the observation may have been written by a create, which
        // an apply without it would not remove. The resourceVersion guards against lost updates.
        await objects.replace({ ...live, metadata: { ...live.metadata, annotations: kept } }, signal);
        return true;
      } catch (error) {
        if (!isConflict(error)) throw error;
      }
      live = await objects.get(REPLICATION_DESTINATIONS, live.metadata.namespace, live.metadata.name, signal);
    }
    throw new GenerationProblem(
      `ReplicationDestination ${destination.metadata.namespace}/${destination.metadata.name} kept changing while its bound observation was being reset`,
    );
  }

  /** Deletes exactly the stale RD that was read, waits until it is gone, and creates ours. */
  async function replaceStaleDestination(desired: KubeObject, stale: KubeObject, signal: AbortSignal): Promise<KubeObject> {
    const { name, namespace } = desired.metadata;
    const outcome = await objects.delete(
      REPLICATION_DESTINATIONS,
      namespace,
      name,
      { uid: stale.metadata.uid!, resourceVersion: stale.metadata.resourceVersion },
      signal,
    );
    if (outcome === "precondition-failed") {
      throw new GenerationProblem(`ReplicationDestination ${namespace}/${name} changed while it was being replaced`);
    }
    // Finalizers can keep it a little while; the caller's deadline bounds the wait.
    for (;;) {
      try {
        return await objects.create(desired, signal);
      } catch (error) {
        if (!isAlreadyExists(error)) throw error;
      }
      await sleep(replacePollMs, undefined, { signal }).catch(() => signal.throwIfAborted());
    }
  }

  return {
    async generate(request: GenerationRequest, signal: AbortSignal): Promise<GenerationResult> {
      const { pvc, evaluation } = request;
      const { pvcName, namespace, decision, annotations } = evaluation;
      // The handler decided: restore (no valid skip-restore, a backup exists) or not.
      const restoring = request.restoring;
      const path = restoring ? "restore" : "fresh";
      const subject = `PVC ${namespace}/${pvcName}`;
      const support = deps.policySupport?.() ?? { supported: true };
      if (!support.supported) {
        // The state change is logged once where it is detected; this PVC gets the Event.
        void deps.events?.record({
          namespace,
          pvcName,
          type: "Warning",
          reason: "BackupPolicyUnsupported",
          action: restoring ? "Restore" : "Create",
          note: `Nothing was written: ${support.problem}.`,
        });
        if (restoring) return { ok: false, message: `the restore objects for ${subject} were not written, because ${support.problem}` };
        return { ok: true, warnings: [`no backup objects were written for ${subject}, because ${support.problem}`] };
      }
      const created: string[] = [];
      const warnings: string[] = [];
      try {
        const target = backupTargetOf(pvc, pvcName, namespace, restoring ? restoreTargetOf(decision, evaluation.restoreSource) : undefined);
        // Whether a PVC of this name exists right now (the one under review is not stored yet).
        let nameTaken: Promise<boolean> | undefined;
        const isNameTaken = () => (nameTaken ??= objects.get(PERSISTENT_VOLUME_CLAIMS, namespace, pvcName, signal).then((live) => live !== undefined));

        const sourceName = target.names.replicationSource;
        let earlierSource: EarlierSource | "failed";
        try {
          earlierSource = await retireEarlierSource(namespace, sourceName, isNameTaken, signal);
        } catch (error) {
          if (signal.aborted) throw error;
          const detail = errorMessage(error);
          if (restoring)
            throw new GenerationProblem(`ReplicationSource ${namespace}/${sourceName}, left by an earlier PVC of this name, could not be deleted: ${detail}`);
          earlierSource = "failed";
          log.warn({ kind: "ReplicationSource", namespace, name: sourceName, pvc: pvcName, err: error }, "replication source of an earlier pvc not deleted");
          warnings.push(
            `ReplicationSource ${namespace}/${sourceName}, left by an earlier PVC of this name, could not be deleted (${detail}); ` +
              `pvc-guardian's reconciler deletes it on its next pass, and until then it may back up this new volume`,
          );
        }
        if (earlierSource === "not-ours") {
          log.warn(
            { kind: "ReplicationSource", namespace, name: sourceName, pvc: pvcName },
            "replication source named like ours is not managed by pvc-guardian",
          );
        }

        const repository = deps.policyFor?.(namespace) ?? { ok: true as const, policy };
        if (!repository.ok) throw new GenerationProblem(`no repository can be chosen for namespace ${namespace}: ${repository.reason}`);
        const destination = desiredReplicationDestination(target, repository.policy, { paused: !restoring }) as unknown as KubeObject;
        let destinationOutcome: EnsureOutcome | "replaced";
        let liveDestination: KubeObject;
        const live = restoring ? await objects.get(REPLICATION_DESTINATIONS, namespace, destination.metadata.name, signal) : undefined;
        const latestImage = (live?.["status"] as { latestImage?: unknown } | undefined)?.latestImage;
        // A verdict on it belongs to an earlier restore (one that failed leaves no image): a new
        // restore gets a new object, so its own verification starts clean.
        const earlierVerdict = live?.metadata.annotations?.[ANNOTATION_RESTORE_VERDICT];
        if (live !== undefined && (await isNameTaken())) {
          throw new GenerationProblem(
            `PVC ${namespace}/${pvcName} already exists, so its ReplicationDestination is left as it is; ` +
              `a PVC of a taken name cannot be created, and nothing is changed on the word of such a review`,
          );
        }
        if (live !== undefined && (latestImage || earlierVerdict !== undefined)) {
          if (ownershipOf(live.metadata.labels) !== "ours") {
            throw new GenerationProblem(
              `ReplicationDestination ${namespace}/${destination.metadata.name} holds an earlier restore's image and is not managed by pvc-guardian, so it cannot be replaced safely`,
            );
          }
          liveDestination = await replaceStaleDestination(destination, live, signal);
          destinationOutcome = "replaced";
          log.info(
            { kind: "ReplicationDestination", namespace, name: destination.metadata.name, pvc: pvcName, staleUid: live.metadata.uid },
            "stale replication destination replaced",
          );
        } else {
          // The bound observation is decided below, not by this repair.
          ({ outcome: destinationOutcome, live: liveDestination } = await ensure(destination, signal, [
            ANNOTATION_BOUND_OBSERVED_AT,
            ANNOTATION_BOUND_PVC_UID,
          ]));
        }
        // The earlier PVC's observation must not count for this one. Kept when its RS could not
        // be deleted: the uid it names is what lets the reconciler find that RS.
        if (earlierSource !== "failed" && earlierSource !== "left-to-its-pvc") {
          const hasObservation = [ANNOTATION_BOUND_OBSERVED_AT, ANNOTATION_BOUND_PVC_UID].some(
            (key) => liveDestination.metadata.annotations?.[key] !== undefined,
          );
          if (hasObservation && !(await isNameTaken())) {
            try {
              await resetBoundObservation(liveDestination, signal);
            } catch (error) {
              if (restoring || signal.aborted) throw error;
              log.warn(
                { kind: "ReplicationDestination", namespace, name: liveDestination.metadata.name, pvc: pvcName, err: error },
                "bound observation not reset",
              );
            }
          }
        }
        if (destinationOutcome === "created" || destinationOutcome === "replaced") created.push(`ReplicationDestination ${destination.metadata.name}`);
        if (destinationOutcome === "created" || destinationOutcome === "replaced") metrics.objectsCreated.inc({ kind: "ReplicationDestination" });
        else if (destinationOutcome === "updated") metrics.objectsRepaired.inc({ kind: "ReplicationDestination" });

        if (deps.events) {
          if (earlierSource === "deleted") {
            void deps.events.record({
              namespace,
              pvcName,
              type: "Normal",
              reason: "StaleReplicationSourceDeleted",
              action: "Delete",
              note:
                `Deleted ReplicationSource ${sourceName}: it was made for an earlier PVC of this name and would back up this one too early. ` +
                `It is created again once this PVC has been Bound for the first-backup delay.`,
            });
          }
          if (restoring && decision.answer === "restore") {
            void deps.events.record({
              namespace,
              pvcName,
              type: "Normal",
              reason: "RestoreDecided",
              action: "Restore",
              note:
                `Restoring snapshot ${decision.snapshot.id} of ${decision.snapshot.startTime} (Kopia identity ${decision.identity}` +
                `${annotations.restoreAsOf ? `, as of ${annotations.restoreAsOf}` : ""}) through ReplicationDestination ${destination.metadata.name}, ` +
                `pinned to restoreAsOf ${decision.restorePoint.restoreAsOf}${decision.restorePoint.previous > 0 ? ` with previous ${decision.restorePoint.previous}` : ""}` +
                `${destinationOutcome === "replaced" ? "; an earlier restore's ReplicationDestination was replaced" : ""}.`,
            });
          }
          if (created.length > 0) {
            void deps.events.record({
              namespace,
              pvcName,
              type: "Normal",
              reason: "BackupObjectsCreated",
              action: "Create",
              note:
                `Created ${created.join(" and ")}; the Secret with the repository credentials follows from the reconciler once the API server has stored the PVC, ` +
                `and the ReplicationSource once the PVC has been Bound for the first-backup delay.`,
            });
          }
        }
        return { ok: true, warnings };
      } catch (error) {
        const detail = signal.aborted ? "the admission deadline passed before the API server answered" : errorMessage(error);
        log.warn({ kind: "PersistentVolumeClaim", namespace, name: pvcName, path, err: error }, "backup object generation failed");
        // The handler puts this into its own sentence (deny on the restore path, warn on the
        // fresh path), so it is the clause that says what failed.
        const message = `the ${restoring ? "restore" : "backup"} objects for ${subject} could not be written (${detail})`;
        return { ok: false, message };
      }
    },
  };
}
