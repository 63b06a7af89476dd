import { setTimeout as sleep } from "node:timers/promises";
import type { BackupObjectGenerator, GenerationRequest, GenerationResult } from "../admission/generation-port.ts";
import { backupTargetOf, desiredReplicationDestination, desiredSecret } from "../domain/desired-resources.ts";
import type { Policy } from "../domain/policy.ts";
import { LABEL_MANAGED_BY, MANAGED_BY_GUARDIAN, MANAGED_BY_KYVERNO } from "../domain/wire-names.ts";
import {
  REPLICATION_DESTINATIONS,
  SECRETS,
  isAlreadyExists,
  resourceKindOf,
  type KubeObject,
  type KubeObjects,
} from "../kube/kube-objects.ts";
import type { PvcEventRecorder } from "../kube/pvc-events.ts";
import { planDrift } from "./drift-plan.ts";
import type { Log, ReconcilerMetrics } from "./reconciler-metrics.ts";

// Generate on admission (product.md 2.4): the validator, having allowed a protected PVC, calls
// this to create its Secret clone and ReplicationDestination before the PVC is stored, so a
// restoring PVC finds its volume populator's source at once. Creates never take over an object
// someone else owns; repairs are server-side applies of our fields only. On the restore path an
// RD that already restored an earlier image is deleted (only that exact object, by uid) and made
// again, or the populator would fill the new PVC from old data.

export type AdmissionGeneratorDeps = {
  objects: KubeObjects;
  policy: Pick<Policy, "resources" | "nfs" | "sourceSecret">;
  log: Log;
  metrics: ReconcilerMetrics;
  events?: PvcEventRecorder;
  adoptKyverno?: boolean;
  /** How often to check that a replaced RD is gone. */
  replacePollMs?: number;
};

type EnsureOutcome = "created" | "updated" | "unchanged";

class GenerationProblem extends Error {}

export function createAdmissionGenerator(deps: AdmissionGeneratorDeps): BackupObjectGenerator {
  const { objects, policy, log, metrics } = deps;
  const replacePollMs = deps.replacePollMs ?? 100;

  async function ensure(desired: KubeObject, signal: AbortSignal): Promise<EnsureOutcome> {
    const kind = resourceKindOf(desired);
    const { name, namespace } = desired.metadata;
    try {
      await objects.create(desired, signal);
      return "created";
    } catch (error) {
      if (!isAlreadyExists(error)) throw error;
    }
    const live = await objects.get(kind, namespace, name, signal);
    if (live === undefined) {
      await objects.create(desired, signal);
      return "created";
    }
    const managedBy = live.metadata.labels?.[LABEL_MANAGED_BY];
    const adoptable = managedBy === MANAGED_BY_KYVERNO && deps.adoptKyverno === true;
    if (managedBy !== MANAGED_BY_GUARDIAN && !adoptable) {
      throw new GenerationProblem(`${kind.kind} ${namespace}/${name} already exists and is not managed by pvc-guardian (managed-by: ${managedBy ?? "none"})`);
    }
    if (!adoptable && planDrift(desired, live).state === "in-sync") return "unchanged";
    await objects.apply(desired, { force: true }, signal);
    return "updated";
  }

  /** Deletes exactly the stale RD that was read, waits until it is gone, and creates ours. */
  async function replaceStaleDestination(desired: KubeObject, stale: KubeObject, signal: AbortSignal): Promise<void> {
    const { name, namespace } = desired.metadata;
    const outcome = await objects.delete(REPLICATION_DESTINATIONS, namespace, name, { uid: stale.metadata.uid!, resourceVersion: stale.metadata.resourceVersion }, signal);
    if (outcome === "precondition-failed") {
      throw new GenerationProblem(`ReplicationDestination ${namespace}/${name} changed while it was being replaced`);
    }
    // Finalizers can keep it a little while; the caller's deadline bounds the wait.
    for (;;) {
      try {
        await objects.create(desired, signal);
        return;
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
      const created: string[] = [];
      try {
        const target = backupTargetOf(pvc, pvcName, namespace, annotations.restoreAsOf);
        const { namespace: sourceNamespace, name: sourceName } = policy.sourceSecret;
        const source = await objects.get(SECRETS, sourceNamespace, sourceName, signal);
        if (source === undefined) throw new GenerationProblem(`the source Secret ${sourceNamespace}/${sourceName} with the repository credentials does not exist`);
        const secret = desiredSecret(target, (source["data"] as Record<string, string> | undefined) ?? {}) as unknown as KubeObject;
        const secretOutcome = await ensure(secret, signal);
        if (secretOutcome === "created") created.push(`Secret ${secret.metadata.name}`);

        const destination = desiredReplicationDestination(target, policy, { paused: !restoring }) as unknown as KubeObject;
        let destinationOutcome: EnsureOutcome | "replaced";
        const live = restoring ? await objects.get(REPLICATION_DESTINATIONS, namespace, destination.metadata.name, signal) : undefined;
        const latestImage = (live?.["status"] as { latestImage?: unknown } | undefined)?.latestImage;
        if (live !== undefined && latestImage) {
          if (live.metadata.labels?.[LABEL_MANAGED_BY] !== MANAGED_BY_GUARDIAN) {
            throw new GenerationProblem(
              `ReplicationDestination ${namespace}/${destination.metadata.name} holds an earlier restore's image and is not managed by pvc-guardian, so it cannot be replaced safely`,
            );
          }
          await replaceStaleDestination(destination, live, signal);
          destinationOutcome = "replaced";
          log.info({ namespace, pvc: pvcName, replicationDestination: destination.metadata.name, staleUid: live.metadata.uid }, "stale replication destination replaced");
        } else {
          destinationOutcome = await ensure(destination, signal);
        }
        if (destinationOutcome === "created" || destinationOutcome === "replaced") created.push(`ReplicationDestination ${destination.metadata.name}`);
        for (const [kind, outcome] of [["Secret", secretOutcome], ["ReplicationDestination", destinationOutcome]] as const) {
          if (outcome === "created" || outcome === "replaced") metrics.objectsCreated.inc({ kind });
          else if (outcome === "updated") metrics.objectsRepaired.inc({ kind });
        }

        if (deps.events) {
          if (restoring && decision.answer === "restore") {
            void deps.events.record({
              namespace,
              pvcName,
              type: "Normal",
              reason: "RestoreDecided",
              action: "Restore",
              note:
                `Restoring snapshot ${decision.snapshot.id} of ${decision.snapshot.startTime} (Kopia identity ${decision.identity}` +
                `${annotations.restoreAsOf ? `, as of ${annotations.restoreAsOf}` : ""}) through ReplicationDestination ${destination.metadata.name}` +
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
              note: `Created ${created.join(" and ")}; the ReplicationSource follows once the PVC has been Bound for the first-backup delay.`,
            });
          }
        }
        return { ok: true, warnings: [] };
      } catch (error) {
        const detail = signal.aborted ? "the admission deadline passed before the API server answered" : (error as Error).message;
        log.warn({ namespace, pvc: pvcName, path, err: (error as Error).message }, "backup object generation failed");
        // The handler puts this into its own sentence (deny on the restore path, warn on the
        // fresh path), so it is the clause that says what failed.
        const message = `the ${restoring ? "restore" : "backup"} objects for ${subject} could not be written (${detail})`;
        return { ok: false, message };
      }
    },
  };
}
