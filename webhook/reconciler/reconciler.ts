import { randomUUID } from "node:crypto";
import type { Policy } from "../domain/policy.ts";
import type { PolicySupport } from "../domain/policy-support.ts";
import { BACKUP_LABEL, LABEL_PVC } from "../domain/wire-names.ts";
import { PERSISTENT_VOLUME_CLAIMS, REPLICATION_DESTINATIONS, REPLICATION_SOURCES, SECRETS, isAlreadyExists, type KubeObjects } from "../kube/kube-objects.ts";
import type { PvcEventRecorder } from "../kube/pvc-events.ts";
import { forEachConcurrently } from "../domain/bounded-concurrency.ts";
import { planReconcile, type PlannedWrite, type ProtectedPvc } from "./reconcile-plan.ts";
import type { Logger } from "../domain/logger.ts";
import type { ReconcilerMetrics } from "./reconciler-metrics.ts";
import { createRestoreVerifier } from "./restore-verifier.ts";
import { errorMessage } from "../domain/error-message.ts";

// One level-triggered reconcile pass: list each kind once, plan in memory, write only what
// differs. Requests per pass are (kinds x pages) + 1 (the source Secret) + one per write or
// delete, so a thousand in-sync PVCs cost the same handful of requests as ten.

export type ReconcilerDeps = {
  objects: KubeObjects;
  policy: Pick<Policy, "tiers" | "excludedNamespaces" | "resources" | "nfs" | "firstBackupDelayMs" | "sourceSecret" | "additionalRepositories">;
  log: Logger;
  metrics: ReconcilerMetrics;
  events?: PvcEventRecorder;
  /** Take over objects Kyverno generated for a PVC (policy reconcile.adoptKyverno). */
  adoptKyverno: boolean;
  /**
   * With more than one repository: the policy of the repository serving a namespace (its source
   * Secret and mover volume), or why none can be told. Absent: `policy` serves every namespace.
   */
  repositoryPolicyFor?: (namespace: string) => { ok: true; policy: Pick<Policy, "resources" | "nfs" | "sourceSecret"> } | { ok: false; reason: string };
  /** Whether the installed VolSync can run the policy; when not, no RS or RD is written. */
  policySupport?: () => PolicySupport;
  /** Objects per list request. */
  pageSize: number;
  /** Writes in flight at once, restore verdicts included. */
  writeConcurrency: number;
  now?: () => number;
};

export type ReconcileReport = {
  outcome: "ok" | "partial" | "error";
  protectedPvcs: number;
  /** Each protected PVC and its tier, as of this pass (empty when a list failed). */
  inventory: ProtectedPvc[];
  awaitingFirstBackup: number;
  created: number;
  repaired: number;
  /** ReplicationSources of earlier PVCs of the same name, deleted. */
  deleted: number;
  /** Finished restores given a verdict (restore-verifier.ts). */
  restoresJudged: number;
  failed: number;
  notes: number;
  /** Why the pass did nothing, when a list failed. */
  problem?: string;
};

export type Reconciler = { runPass(signal?: AbortSignal): Promise<ReconcileReport> };

export function createReconciler(deps: ReconcilerDeps): Reconciler {
  const { objects, policy, metrics } = deps;
  const now = deps.now ?? Date.now;
  const { pageSize } = deps;
  const restoreVerifier = createRestoreVerifier({
    objects,
    log: deps.log,
    restoreVerifications: metrics.restoreVerifications,
    ...(deps.events ? { events: deps.events } : {}),
    writeConcurrency: deps.writeConcurrency,
  });

  async function write(planned: PlannedWrite, signal: AbortSignal | undefined, log: Logger): Promise<"created" | "repaired" | "deleted" | "skipped"> {
    const { namespace, name } = planned.object.metadata;
    if (planned.action === "delete") {
      const outcome = await objects.delete(REPLICATION_SOURCES, namespace, name, { uid: planned.object.metadata.uid! }, signal);
      // Replaced since the list: the PVC's other writes wait, and the next pass judges the new one.
      if (outcome === "precondition-failed") throw new Error(`${planned.kind} ${namespace}/${name} was replaced since it was listed`);
      if (outcome === "not-found") return "skipped";
      log.info({ namespace, name, kind: planned.kind, pvc: planned.pvc.name, reason: planned.reason }, "replication source of an earlier pvc deleted");
      return "deleted";
    }
    if (planned.action === "create") {
      try {
        await objects.create(planned.object, signal);
      } catch (error) {
        // Someone made it since we listed (admission, another pass): next pass looks again.
        if (isAlreadyExists(error)) return "skipped";
        throw error;
      }
      log.info({ namespace, name, kind: planned.kind, pvc: planned.pvc.name, reason: planned.reason }, "generated object created");
      return "created";
    }
    await objects.apply(planned.object, { force: true }, signal);
    log.info({ namespace, name, kind: planned.kind, pvc: planned.pvc.name, reason: planned.reason, action: planned.action }, "generated object repaired");
    return "repaired";
  }

  return {
    async runPass(signal) {
      const startedMs = performance.now();
      const reconcileId = randomUUID();
      const log = deps.log.child({ controller: "reconciler", reconcileId });
      const report: ReconcileReport = {
        outcome: "ok",
        protectedPvcs: 0,
        inventory: [],
        awaitingFirstBackup: 0,
        created: 0,
        repaired: 0,
        deleted: 0,
        restoresJudged: 0,
        failed: 0,
        notes: 0,
      };
      try {
        const ours = { labelSelector: LABEL_PVC, pageSize };
        // Each repository's source Secret, read once per pass.
        const sourceSecretRefs = [policy.sourceSecret, ...(policy.additionalRepositories ?? []).map((repository) => repository.sourceSecret)];
        const secretKey = (ref: { namespace: string; name: string }) => `${ref.namespace}/${ref.name}`;
        const readSourceSecret = (ref: { namespace: string; name: string }) =>
          objects.get(SECRETS, ref.namespace, ref.name, signal).catch((error: unknown) => {
            log.warn({ kind: "Secret", namespace: ref.namespace, name: ref.name, err: error }, "source secret unreadable");
            return undefined;
          });
        const [pvcs, secrets, destinations, sources, ...sourceSecrets] = await Promise.all([
          objects.list(PERSISTENT_VOLUME_CLAIMS, { labelSelector: BACKUP_LABEL, pageSize }, signal),
          objects.list(SECRETS, ours, signal),
          objects.list(REPLICATION_DESTINATIONS, ours, signal),
          objects.list(REPLICATION_SOURCES, ours, signal),
          ...sourceSecretRefs.map(readSourceSecret),
        ]);
        const sourceDataByKey = new Map(
          sourceSecretRefs.map((ref, index) => {
            const secret = sourceSecrets[index];
            return [secretKey(ref), secret ? ((secret["data"] as Record<string, string> | undefined) ?? {}) : undefined] as const;
          }),
        );
        const sourceSecret = sourceSecrets[0];
        const support = deps.policySupport?.() ?? { supported: true };
        const partial = [pvcs, secrets, destinations, sources].find((list) => !list.complete);
        if (partial && !partial.complete) {
          // Acting on half a view would only produce AlreadyExists noise or miss repairs; the
          // next pass sees everything.
          report.outcome = "partial";
          report.problem = partial.error;
          metrics.reconcilePasses.inc({ outcome: "partial" });
          log.warn({ problem: partial.error }, "reconcile pass skipped: a list was incomplete");
          return report;
        }
        if (sourceSecret === undefined)
          log.warn({ kind: "Secret", namespace: policy.sourceSecret.namespace, name: policy.sourceSecret.name }, "source secret missing");
        const plan = planReconcile({
          nowMs: now(),
          policy,
          pvcs: pvcs.items,
          secrets: secrets.items,
          replicationDestinations: destinations.items,
          replicationSources: sources.items,
          sourceSecretData: sourceDataByKey.get(secretKey(policy.sourceSecret)),
          adoptKyverno: deps.adoptKyverno,
          ...(deps.repositoryPolicyFor
            ? {
                repositoryFor: (namespace: string) => {
                  const chosen = deps.repositoryPolicyFor!(namespace);
                  if (!chosen.ok) return chosen;
                  return { ok: true as const, policy: chosen.policy, sourceSecretData: sourceDataByKey.get(secretKey(chosen.policy.sourceSecret)) };
                },
              }
            : {}),
        });
        report.protectedPvcs = plan.protectedPvcs;
        report.inventory = plan.inventory;
        report.awaitingFirstBackup = plan.awaitingFirstBackup;
        report.notes = plan.notes.length;
        for (const note of plan.notes) log.debug({ kind: "PersistentVolumeClaim", namespace: note.namespace, name: note.pvcName }, note.note);

        // Deletes of earlier PVCs' ReplicationSources first: each one may start a sync on its
        // schedule, and when one fails the PVC's other writes wait, so its RD keeps recording the
        // earlier uid that lets the next pass find the RS again. Then Secrets and RDs before RSs:
        // a ReplicationSource must never run without its Secret.
        // VolSync objects that could never run are not written (readiness and the log say why once);
        // Secrets still are, and deletes of earlier PVCs' sources only stop backups.
        const writes = support.supported ? plan.writes : plan.writes.filter((planned) => planned.kind === "Secret" || planned.action === "delete");
        if (!support.supported && writes.length < plan.writes.length) {
          log.debug({ skipped: plan.writes.length - writes.length }, "volsync objects not written: the installed VolSync cannot run the policy");
        }
        const deleteWave = writes.filter((planned) => planned.action === "delete");
        const firstWave = writes.filter((planned) => planned.action !== "delete" && planned.kind !== "ReplicationSource");
        const secondWave = writes.filter((planned) => planned.action !== "delete" && planned.kind === "ReplicationSource");
        const failedPvcs = new Set<string>();
        const createdByPvc = new Map<string, string[]>();
        const runWave = (wave: PlannedWrite[]) =>
          forEachConcurrently(wave, deps.writeConcurrency, async (planned) => {
            const pvcKey = `${planned.pvc.namespace}/${planned.pvc.name}`;
            if (failedPvcs.has(pvcKey)) return;
            try {
              const outcome = await write(planned, signal, log);
              if (outcome === "created") {
                report.created++;
                metrics.objectsCreated.inc({ kind: planned.kind });
                createdByPvc.set(pvcKey, [...(createdByPvc.get(pvcKey) ?? []), `${planned.kind} ${planned.object.metadata.name}`]);
                if (planned.schedulesFirstBackup) {
                  void deps.events?.record({
                    namespace: planned.pvc.namespace,
                    pvcName: planned.pvc.name,
                    ...(planned.pvc.uid === undefined ? {} : { pvcUid: planned.pvc.uid }),
                    type: "Normal",
                    reason: "FirstBackupScheduled",
                    action: "Create",
                    note: `Created ReplicationSource ${planned.object.metadata.name}: the PVC has been Bound for the first-backup delay; backups run on schedule "${(planned.object["spec"] as { trigger: { schedule: string } }).trigger.schedule}".`,
                  });
                }
              } else if (outcome === "repaired") {
                report.repaired++;
                metrics.objectsRepaired.inc({ kind: planned.kind });
              } else if (outcome === "deleted") {
                report.deleted++;
                metrics.objectsDeleted.inc({ kind: planned.kind });
                void deps.events?.record({
                  namespace: planned.pvc.namespace,
                  pvcName: planned.pvc.name,
                  ...(planned.pvc.uid === undefined ? {} : { pvcUid: planned.pvc.uid }),
                  type: "Normal",
                  reason: "StaleReplicationSourceDeleted",
                  action: "Delete",
                  note:
                    `Deleted ReplicationSource ${planned.object.metadata.name}: it was made for an earlier PVC of this name and would back up this one too early. ` +
                    `It is created again once this PVC has been Bound for the first-backup delay.`,
                });
              }
            } catch (error) {
              report.failed++;
              failedPvcs.add(pvcKey);
              log.warn(
                { kind: planned.kind, namespace: planned.pvc.namespace, name: planned.object.metadata.name, pvc: planned.pvc.name, err: error },
                "reconcile write failed",
              );
            }
          });
        await runWave(deleteWave);
        await runWave(firstWave);
        await runWave(secondWave);
        for (const [pvcKey, created] of createdByPvc) {
          const nonSource = created.filter((entry) => !entry.startsWith("ReplicationSource"));
          if (nonSource.length === 0) continue;
          const [namespace, pvcName] = pvcKey.split("/") as [string, string];
          void deps.events?.record({
            namespace,
            pvcName,
            type: "Normal",
            reason: "BackupObjectsCreated",
            action: "Create",
            note: `Created ${nonSource.join(" and ")} (repair by the reconciler).`,
          });
        }
        // After the repairs, so a verdict's write never races this pass's own apply of the RD.
        const verification = await restoreVerifier.verifyFinishedRestores(destinations.items, pvcs.items, signal, reconcileId);
        report.restoresJudged = verification.judged;
        report.failed += verification.failed;
        report.outcome = report.failed > 0 ? "error" : "ok";
        metrics.reconcilePasses.inc({ outcome: report.outcome });
        // The counts at info; the per-PVC inventory only at debug, or every pass on a large
        // cluster would write a line of thousands of entries.
        const { inventory, ...counts } = report;
        log.info(counts, "reconcile pass done");
        log.debug({ inventory }, "reconcile pass inventory");
        return report;
      } catch (error) {
        report.outcome = "error";
        report.problem = errorMessage(error);
        metrics.reconcilePasses.inc({ outcome: "error" });
        log.error({ err: error }, "reconcile pass failed");
        return report;
      } finally {
        metrics.reconcileDuration.observe((performance.now() - startedMs) / 1000);
      }
    },
  };
}
