import { isCrdValidIdentityField, parseIdentityKey, type BackupIdentity, type KopiaIdentity } from "./kopia-identity.ts";
import { compareSnapshotsLikeKopia, type CatalogLookup, type SnapshotRecord } from "./snapshot-catalog.ts";
import { ANNOTATION_RESTORE_FROM_IDENTITY, ANNOTATION_SKIP_RESTORE, ANNOTATION_SKIP_RESTORE_REASON } from "./wire-names.ts";

// The one decision that protects data. `fresh` is only ever answered from a repository that was
// actually read; every other doubt is `unknown`, which the validator turns into a denial. The
// system we replace reported a Kopia error as "no backup", and PVCs came up empty over
// restorable data.
//
// A `restore` also says how to make VolSync's mover restore exactly the chosen snapshot. The
// mover lists the identity's snapshots in kopia's order (start time, then end time), keeps those
// whose start-time TEXT sorts at or before its restoreAsOf text, and takes the newest, complete
// or not, skipping `previous` of them. So the RD is pinned to the chosen snapshot's own start-time
// text, and `previous` counts the snapshots that text comparison still lets in after it (another
// snapshot later in the same second when the chosen one starts on a whole second: `…:00Z` sorts
// after `…:00.5Z`).

/** How the ReplicationDestination makes the mover take the chosen snapshot. */
export type RestorePoint = {
  /** `spec.kopia.restoreAsOf`: the chosen snapshot's startTime, exactly as kopia wrote it. */
  restoreAsOf: string;
  /** `spec.kopia.previous`: eligible snapshots the mover must skip; 0 almost always. */
  previous: number;
};

export type RestoreDecision =
  | { answer: "restore"; identity: string; snapshot: SnapshotRecord; completeSnapshots: number; restorePoint: RestorePoint }
  | { answer: "fresh"; identity: string }
  /** `remedy`, when set, replaces the generic advice to fix the repository access. */
  | { answer: "unknown"; identity: string; reason: string; remedy?: string };

/** The newest complete snapshot in kopia's order, at or before `atOrBeforeNs` when given; incomplete ones never count. */
export function newestCompleteSnapshot(snapshots: readonly SnapshotRecord[], atOrBeforeNs?: bigint): SnapshotRecord | undefined {
  let newest: SnapshotRecord | undefined;
  for (const snapshot of snapshots) {
    if (snapshot.incomplete) continue;
    if (atOrBeforeNs !== undefined && snapshot.startTimeNs > atOrBeforeNs) continue;
    if (!newest || compareSnapshotsLikeKopia(snapshot, newest) > 0) newest = snapshot;
  }
  return newest;
}

/**
 * The restoreAsOf and previous that make the mover's rule select `chosen` among `snapshots` (one
 * identity's), or why none can: two snapshots with the same start and end time are listed in an
 * order kopia does not define, so the mover's pick between them cannot be predicted.
 */
export function pinRestorePoint(
  snapshots: readonly SnapshotRecord[],
  chosen: SnapshotRecord,
): { ok: true; point: RestorePoint } | { ok: false; reason: string } {
  // The mover's filter, a text comparison (kopia writes ASCII, so code units order as bytes do).
  const eligible = snapshots.filter((snapshot) => snapshot.startTime <= chosen.startTime);
  const twin = eligible.find((snapshot) => snapshot.id !== chosen.id && compareSnapshotsLikeKopia(snapshot, chosen) === 0);
  if (twin) {
    return {
      ok: false,
      reason:
        `snapshots ${chosen.id} and ${twin.id} both started at ${chosen.startTime} and ended at ${chosen.endTime}, ` +
        `so which one VolSync's mover would restore cannot be told`,
    };
  }
  const listedAfter = eligible.filter((snapshot) => compareSnapshotsLikeKopia(snapshot, chosen) > 0).length;
  return { ok: true, point: { restoreAsOf: chosen.startTime, previous: listedAfter } };
}

const countComplete = (snapshots: readonly SnapshotRecord[], atOrBeforeNs?: bigint): number =>
  snapshots.filter((s) => !s.incomplete && (atOrBeforeNs === undefined || s.startTimeNs <= atOrBeforeNs)).length;

/** The decision for one Kopia identity. */
export function decideRestore(identity: string, lookup: CatalogLookup, restoreAsOfNs?: bigint): RestoreDecision {
  if (!lookup.readable) return { answer: "unknown", identity, reason: lookup.reason };

  const newest = newestCompleteSnapshot(lookup.snapshots, restoreAsOfNs);
  if (newest) {
    const pinned = pinRestorePoint(lookup.snapshots, newest);
    if (!pinned.ok) return { answer: "unknown", identity, reason: pinned.reason };
    return { answer: "restore", identity, snapshot: newest, completeSnapshots: countComplete(lookup.snapshots, restoreAsOfNs), restorePoint: pinned.point };
  }
  const complete = countComplete(lookup.snapshots);
  if (complete > 0) {
    // Backups exist, just none old enough: an empty volume is not what the user asked for.
    return {
      answer: "unknown",
      identity,
      reason: `the repository holds ${complete} complete snapshot(s) for ${identity}, ` + `but none at or before the requested restore-as-of time`,
    };
  }
  return { answer: "fresh", identity };
}

/**
 * Where a restore reads from: the PVC's own identity, or one the PVC's annotation named. `fields`
 * says how the RD names it: explicitly, or by leaving username and hostname out so VolSync derives
 * them from the RD's name (the only way to reach an automatic identity the CRD refuses as a value).
 */
export type RestoreSource = { identity: KopiaIdentity; fields: "explicit" | "automatic" };

export type PvcRestoreDecision = {
  decision: RestoreDecision;
  /** Set with a `restore` answer. */
  source?: RestoreSource;
  warnings: string[];
};

const skipAdvice = `to start empty, set ${ANNOTATION_SKIP_RESTORE}: "true" with a ${ANNOTATION_SKIP_RESTORE_REASON}`;

function restoreSourceFor(identity: KopiaIdentity, backup: BackupIdentity): RestoreSource | undefined {
  if (isCrdValidIdentityField(identity.username) && isCrdValidIdentityField(identity.hostname)) return { identity, fields: "explicit" };
  if (identity.key === backup.automatic.key) return { identity, fields: "automatic" };
  return undefined;
}

/**
 * The decision for a PVC: its own identity first; when that holds nothing, the identity its
 * `restore-from-identity` annotation names, or else VolSync's automatic identity when that differs
 * from the written one: it may hold this PVC's earlier backups or another PVC's, and only the
 * operator can tell which, so the answer is `unknown` with the way out.
 */
export function decidePvcRestore(
  backup: BackupIdentity,
  lookup: (identityKey: string) => CatalogLookup,
  request: { restoreAsOfNs?: bigint; restoreFromIdentity?: string },
): PvcRestoreDecision {
  const own = backup.written;
  const decision = decideRestore(own.key, lookup(own.key), request.restoreAsOfNs);
  const ownSource: RestoreSource = { identity: own, fields: "explicit" };
  if (decision.answer === "restore") {
    const warnings =
      request.restoreFromIdentity === undefined
        ? []
        : [`annotation ${ANNOTATION_RESTORE_FROM_IDENTITY} is ignored: this PVC's own identity ${own.key} holds backups, and the newest is restored`];
    return { decision, source: ownSource, warnings };
  }
  if (decision.answer === "unknown") return { decision, warnings: [] };

  if (request.restoreFromIdentity !== undefined) return decideRestoreFrom(backup, lookup, request.restoreFromIdentity, request.restoreAsOfNs);

  const automatic = backup.automatic;
  if (automatic.key === own.key) return { decision, warnings: [] };
  const legacy = lookup(automatic.key);
  if (!legacy.readable) return { decision: { answer: "unknown", identity: own.key, reason: legacy.reason }, warnings: [] };
  if (legacy.snapshots.length === 0) return { decision, warnings: [] };
  return {
    decision: {
      answer: "unknown",
      identity: own.key,
      reason:
        `this PVC's backups are written under ${own.key}, which holds none yet, but ${automatic.key} holds ` +
        `${legacy.snapshots.length} snapshot(s): ${backup.automaticProblem ?? "it is VolSync's automatic name for this PVC"}, ` +
        `so they may be another PVC's data`,
      remedy:
        `If those snapshots are this volume's, set the annotation ${ANNOTATION_RESTORE_FROM_IDENTITY}: "${automatic.key}" to restore from them ` +
        `(check with \`kopia snapshot list ${automatic.key}\`); ${skipAdvice}.`,
    },
    warnings: [],
  };
}

function decideRestoreFrom(backup: BackupIdentity, lookup: (identityKey: string) => CatalogLookup, text: string, restoreAsOfNs?: bigint): PvcRestoreDecision {
  const own = backup.written;
  const unknown = (reason: string, remedy: string): PvcRestoreDecision => ({
    decision: { answer: "unknown", identity: own.key, reason, remedy },
    warnings: [],
  });
  const fixAnnotation = `Correct or remove the annotation ${ANNOTATION_RESTORE_FROM_IDENTITY}; ${skipAdvice}.`;
  const named = parseIdentityKey(text);
  if (named === undefined)
    return unknown(`annotation ${ANNOTATION_RESTORE_FROM_IDENTITY}="${text}" is not a Kopia identity such as ${backup.automatic.key}`, fixAnnotation);
  // Only identities of this PVC's own namespace: the annotation must not reach other tenants' data.
  const ownHostnames = new Set([own.hostname, backup.automatic.hostname]);
  if (!ownHostnames.has(named.hostname) || named.path !== own.path) {
    return unknown(
      `annotation ${ANNOTATION_RESTORE_FROM_IDENTITY} names ${named.key}, but a PVC may only restore from identities of its own namespace ` +
        `(${[...ownHostnames].map((h) => `<username>@${h}:${own.path}`).join(" or ")})`,
      fixAnnotation,
    );
  }
  const decision = decideRestore(named.key, lookup(named.key), restoreAsOfNs);
  if (decision.answer === "unknown") return { decision: { ...decision, identity: named.key }, warnings: [] };
  if (decision.answer === "fresh") {
    return unknown(
      `annotation ${ANNOTATION_RESTORE_FROM_IDENTITY} names ${named.key}, which holds no complete snapshot, and ${own.key} holds none either`,
      fixAnnotation,
    );
  }
  const source = restoreSourceFor(named, backup);
  if (source === undefined) {
    return unknown(
      `${named.key} cannot be given to VolSync: its CRD refuses the username or hostname as a value, and it is not the name VolSync derives for this PVC`,
      fixAnnotation,
    );
  }
  return {
    decision,
    source,
    warnings: [`restoring from ${named.key} as ${ANNOTATION_RESTORE_FROM_IDENTITY} asks; new backups are written under ${own.key}`],
  };
}
