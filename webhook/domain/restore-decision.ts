import type { CatalogLookup, SnapshotRecord } from "./snapshot-catalog.ts";

// The one decision that protects data. `fresh` is only ever answered from a repository that was
// actually read; every other doubt is `unknown`, which the validator turns into a denial. The
// system we replace reported a Kopia error as "no backup", and PVCs came up empty over
// restorable data.

export type RestoreDecision =
  | { answer: "restore"; identity: string; snapshot: SnapshotRecord; completeSnapshots: number }
  | { answer: "fresh"; identity: string }
  | { answer: "unknown"; identity: string; reason: string };

/** The newest complete snapshot, at or before `atOrBeforeMs` when given; incomplete ones never count. */
export function newestCompleteSnapshot(snapshots: readonly SnapshotRecord[], atOrBeforeMs?: number): SnapshotRecord | undefined {
  let newest: SnapshotRecord | undefined;
  for (const snapshot of snapshots) {
    if (snapshot.incomplete) continue;
    if (atOrBeforeMs !== undefined && snapshot.startTimeMs > atOrBeforeMs) continue;
    if (!newest || snapshot.startTimeMs > newest.startTimeMs) newest = snapshot;
  }
  return newest;
}

export function decideRestore(identity: string, lookup: CatalogLookup, restoreAsOfMs?: number): RestoreDecision {
  if (!lookup.readable) return { answer: "unknown", identity, reason: lookup.reason };

  const newest = newestCompleteSnapshot(lookup.snapshots, restoreAsOfMs);
  const countComplete = (atOrBeforeMs?: number) =>
    lookup.snapshots.filter((s) => !s.incomplete && (atOrBeforeMs === undefined || s.startTimeMs <= atOrBeforeMs)).length;
  if (newest) return { answer: "restore", identity, snapshot: newest, completeSnapshots: countComplete(restoreAsOfMs) };
  const complete = countComplete();
  if (complete > 0) {
    // Backups exist, just none old enough: an empty volume is not what the user asked for.
    return {
      answer: "unknown",
      identity,
      reason:
        `the repository holds ${complete} complete snapshot(s) for ${identity}, ` +
        `but none at or before the requested restore-as-of time`,
    };
  }
  return { answer: "fresh", identity };
}
