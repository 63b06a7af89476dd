// What the read API and `pvc-guardian audit` say about each protected PVC: its tier, which
// generated objects exist, the newest snapshot in the repository, the ReplicationSource's last
// sync, and one verdict. Pure: the inventory and the catalog view come in as arguments.

import { readBackupAnnotations } from "./backup-annotations.ts";
import { resolveSchedule, scheduleIntervalMs } from "./backup-schedule.ts";
import { isDueForFirstBackup } from "./desired-resources.ts";
import { backupIdentity, type KopiaIdentity } from "./kopia-identity.ts";
import type { Policy } from "./policy.ts";
import { resolveProtection } from "./protection.ts";
import { generatedNames } from "./resource-names.ts";
import { decidePvcRestore, type RestoreDecision } from "./restore-decision.ts";
import type { CatalogLookup, SnapshotRecord } from "./snapshot-catalog.ts";
// The reconciler records when it first saw the PVC Bound on the RD; the first backup is due from then.
// A restore's RD carries the pinned snapshot and, once its mover finished, the reconciler's verdict.
import { ANNOTATION_BOUND_OBSERVED_AT, ANNOTATION_RESTORE_SNAPSHOT_ID, ANNOTATION_RESTORE_VERDICT, ANNOTATION_RESTORE_VERDICT_DETAIL } from "./wire-names.ts";
import { restoreVerdicts, type RestoreVerdict } from "./restore-verification.ts";
import { newestCompleteSnapshot } from "./restore-decision.ts";

/** The parts of a live object the audit reads. */
export type InventoryObject = {
  namespace: string;
  name: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** PVC: status.phase. */
  phase?: string;
  /** ReplicationSource: status.lastSyncTime. */
  lastSyncTime?: string;
  /** ReplicationDestination: spec.paused. */
  paused?: boolean;
};

export type AuditInventory = {
  pvcs: InventoryObject[];
  replicationSources: InventoryObject[];
  replicationDestinations: InventoryObject[];
  secrets: InventoryObject[];
};

/**
 * ok: objects present and a snapshot newer than twice the tier interval;
 * no-backup-yet: objects present, no snapshot, and the first backup is not overdue;
 * stale: the newest snapshot (or, without one, the first backup) is overdue;
 * missing-objects: a generated object that should exist does not;
 * unknown: the repository could not be read, so nothing can be said about snapshots;
 * restore-failed: the restore into this PVC failed, restored nothing, or did not match its snapshot.
 */
export type AuditVerdict = "ok" | "no-backup-yet" | "stale" | "missing-objects" | "unknown" | "restore-failed";

/**
 * The restore pvc-guardian started for a PVC, from its ReplicationDestination: the pinned
 * snapshot and the reconciler's verdict (null while the mover has not finished).
 */
export type RestoreStatus = { snapshot: string; verdict: RestoreVerdict | null; detail: string | null };

/** What a ReplicationDestination says about the restore it carries; null when it carries none. */
export function restoreStatusOf(annotations: Record<string, string> | undefined): RestoreStatus | null {
  const snapshot = annotations?.[ANNOTATION_RESTORE_SNAPSHOT_ID];
  if (snapshot === undefined) return null;
  const written = annotations?.[ANNOTATION_RESTORE_VERDICT];
  // A value this version does not know is reported as not yet judged rather than guessed at.
  const verdict = (restoreVerdicts as readonly string[]).includes(written ?? "") ? (written as RestoreVerdict) : null;
  return { snapshot, verdict, detail: verdict === null ? null : (annotations?.[ANNOTATION_RESTORE_VERDICT_DETAIL] ?? null) };
}

const failedRestoreVerdicts: readonly RestoreVerdict[] = ["mismatch", "empty", "failed"];

export type AuditRow = {
  namespace: string;
  pvc: string;
  tier: string;
  phase: string | null;
  identity: string;
  /** The repository serving the PVC's namespace (null when none can be told, or not reported). */
  repository: string | null;
  objects: { secret: boolean; replicationDestination: boolean; replicationSource: boolean };
  lastSnapshotTime: string | null;
  completeSnapshots: number | null;
  replicationSourceLastSyncTime: string | null;
  /** The restore pvc-guardian started for this PVC, if any. */
  restore: RestoreStatus | null;
  verdict: AuditVerdict;
  /** Why the verdict is not ok, and what became of a restore, as sentences. */
  detail: string | null;
};

export type AuditReport = { generatedAt: string; repositoryReadable: boolean; repositoryProblem: string | null; rows: AuditRow[] };

export type AuditPolicy = Pick<Policy, "tiers" | "excludedNamespaces" | "firstBackupDelayMs">;

function key(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

export function auditProtectedPvcs(
  inventory: AuditInventory,
  policy: AuditPolicy,
  lookup: (identity: string, namespace: string) => CatalogLookup,
  nowMs: number,
  repositoryOf?: (namespace: string) => string | null,
): AuditReport {
  const present = (objects: InventoryObject[]) => new Map(objects.map((o) => [key(o.namespace, o.name), o]));
  const sources = present(inventory.replicationSources);
  const destinations = present(inventory.replicationDestinations);
  const secrets = present(inventory.secrets);
  let repositoryProblem: string | null = null;
  const rows: AuditRow[] = [];

  for (const pvc of inventory.pvcs) {
    const protection = resolveProtection(pvc.labels, pvc.namespace, policy);
    if (protection.kind !== "protected") continue;
    const names = generatedNames(pvc.name);
    const identity = backupIdentity(names.replicationDestination, pvc.namespace).written;
    const catalog = lookup(identity.key, pvc.namespace);
    if (!catalog.readable) repositoryProblem ??= catalog.reason;
    const rd = destinations.get(key(pvc.namespace, names.replicationDestination));
    const rs = sources.get(key(pvc.namespace, names.replicationSource));
    const objects = {
      secret: secrets.has(key(pvc.namespace, names.secret)),
      replicationDestination: rd !== undefined,
      replicationSource: rs !== undefined,
    };
    const schedule = resolveSchedule(readBackupAnnotations(pvc.annotations).scheduleOverride ?? protection.tier.schedule, key(pvc.namespace, pvc.name));
    const intervalMs = schedule.ok ? scheduleIntervalMs(schedule.schedule, nowMs) : undefined;
    const newest = newestComplete(catalog);
    const boundAtMs = Date.parse(rd?.annotations?.[ANNOTATION_BOUND_OBSERVED_AT] ?? "");
    const isSourceDue = isDueForFirstBackup(Number.isFinite(boundAtMs) ? boundAtMs : undefined, nowMs, policy.firstBackupDelayMs);
    const restore = restoreStatusOf(rd?.annotations);
    const { verdict, detail } = withRestore(
      restore,
      judge({ catalog, objects, newest, intervalMs, isSourceDue, boundAtMs, nowMs, firstBackupDelayMs: policy.firstBackupDelayMs }),
    );
    rows.push({
      namespace: pvc.namespace,
      pvc: pvc.name,
      tier: protection.tierName,
      phase: pvc.phase ?? null,
      identity: identity.key,
      repository: repositoryOf?.(pvc.namespace) ?? null,
      objects,
      lastSnapshotTime: newest?.startTime ?? null,
      completeSnapshots: catalog.readable ? catalog.snapshots.filter((s) => !s.incomplete).length : null,
      replicationSourceLastSyncTime: rs?.lastSyncTime ?? null,
      restore,
      verdict,
      detail,
    });
  }
  rows.sort((a, b) => a.namespace.localeCompare(b.namespace) || a.pvc.localeCompare(b.pvc));
  return { generatedAt: new Date(nowMs).toISOString(), repositoryReadable: repositoryProblem === null, repositoryProblem, rows };
}

function newestComplete(catalog: CatalogLookup): SnapshotRecord | undefined {
  return catalog.readable ? newestCompleteSnapshot(catalog.snapshots) : undefined;
}

/**
 * A failed, empty or mismatched restore outranks every other verdict: the data the PVC holds may
 * not be the data that was backed up. Any other restore outcome is said in the detail.
 */
function withRestore(
  restore: RestoreStatus | null,
  judged: { verdict: AuditVerdict; detail: string | null },
): { verdict: AuditVerdict; detail: string | null } {
  if (restore === null) return judged;
  const join = (note: string) => (judged.detail === null ? note : `${judged.detail}; ${note}`);
  if (restore.verdict !== null && failedRestoreVerdicts.includes(restore.verdict)) {
    return {
      verdict: "restore-failed",
      detail: join(`restore ${restore.verdict}: ${restore.detail ?? `no detail recorded for snapshot ${restore.snapshot}`}`),
    };
  }
  if (restore.verdict === "verified") return { verdict: judged.verdict, detail: join(`restored and verified from snapshot ${restore.snapshot}`) };
  if (restore.verdict === "unverified")
    return { verdict: judged.verdict, detail: join(`restored from snapshot ${restore.snapshot} but not verified: ${restore.detail ?? "no detail recorded"}`) };
  return { verdict: judged.verdict, detail: join(`restoring snapshot ${restore.snapshot}; the verdict follows when the mover finishes`) };
}

function judge(facts: {
  catalog: CatalogLookup;
  objects: AuditRow["objects"];
  newest: SnapshotRecord | undefined;
  intervalMs: number | undefined;
  isSourceDue: boolean;
  boundAtMs: number;
  nowMs: number;
  firstBackupDelayMs: number;
}): { verdict: AuditVerdict; detail: string | null } {
  const missing = [
    ...(facts.objects.secret ? [] : ["Secret"]),
    ...(facts.objects.replicationDestination ? [] : ["ReplicationDestination"]),
    ...(facts.objects.replicationSource || !facts.isSourceDue ? [] : ["ReplicationSource"]),
  ];
  if (missing.length > 0) return { verdict: "missing-objects", detail: `missing ${missing.join(", ")}; the reconciler should create them` };
  if (!facts.catalog.readable) return { verdict: "unknown", detail: `the repository could not be read: ${facts.catalog.reason}` };
  const allowanceMs = facts.intervalMs === undefined ? undefined : 2 * facts.intervalMs;
  if (facts.newest === undefined) {
    // The first backup is due firstBackupDelay after Bound, then runs on the schedule.
    const firstDueMs = Number.isFinite(facts.boundAtMs) ? facts.boundAtMs + facts.firstBackupDelayMs : undefined;
    if (firstDueMs !== undefined && allowanceMs !== undefined && facts.nowMs - firstDueMs > allowanceMs) {
      return { verdict: "stale", detail: `no snapshot yet, although the first backup was due at ${new Date(firstDueMs).toISOString()}` };
    }
    return { verdict: "no-backup-yet", detail: null };
  }
  if (allowanceMs !== undefined && facts.nowMs - facts.newest.startTimeMs > allowanceMs) {
    return { verdict: "stale", detail: `the newest snapshot (${facts.newest.startTime}) is older than twice the schedule interval` };
  }
  return { verdict: "ok", detail: null };
}

/** The decision admission would take for a PVC of this name now, and the snapshots behind it. */
export type BackupDescription = {
  namespace: string;
  pvc: string;
  identity: KopiaIdentity;
  decision: RestoreDecision;
  snapshots: readonly SnapshotRecord[];
  catalogRefreshedAt: string | null;
};

/** `annotations` are the live PVC's, when it exists: the restore point and source steer the decision as at admission. */
export function describeBackups(
  namespace: string,
  pvcName: string,
  annotations: Readonly<Record<string, string>> | undefined,
  lookup: (identity: string) => CatalogLookup,
): BackupDescription {
  const backup = backupIdentity(generatedNames(pvcName).replicationDestination, namespace);
  const identity = backup.written;
  const catalog = lookup(identity.key);
  const { restoreAsOfNs, restoreFromIdentity } = readBackupAnnotations(annotations);
  const { decision } = decidePvcRestore(backup, lookup, {
    ...(restoreAsOfNs === undefined ? {} : { restoreAsOfNs }),
    ...(restoreFromIdentity === undefined ? {} : { restoreFromIdentity }),
  });
  return {
    namespace,
    pvc: pvcName,
    identity,
    decision,
    snapshots: catalog.readable ? catalog.snapshots : [],
    catalogRefreshedAt: catalog.readable ? new Date(catalog.refreshedAtMs).toISOString() : null,
  };
}
