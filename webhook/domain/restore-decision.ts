import type { CatalogLookup, SnapshotRecord } from "./snapshot-catalog.ts";

// The one decision that protects data. `fresh` is only ever answered from a repository that was
// actually read; every other doubt is `unknown`, which the validator turns into a denial. The
// system we replace reported a Kopia error as "no backup", and PVCs came up empty over
// restorable data.

export type RestoreDecision =
  | { answer: "restore"; identity: string; snapshot: SnapshotRecord; completeSnapshots: number }
  | { answer: "fresh"; identity: string }
  | { answer: "unknown"; identity: string; reason: string };

export function decideRestore(identity: string, lookup: CatalogLookup, restoreAsOfMs?: number): RestoreDecision {
  if (!lookup.readable) return { answer: "unknown", identity, reason: lookup.reason };

  let newest: SnapshotRecord | undefined;
  let complete = 0;
  let eligible = 0;
  for (const snapshot of lookup.snapshots) {
    if (snapshot.incomplete) continue;
    complete++;
    if (restoreAsOfMs !== undefined && snapshot.startTimeMs > restoreAsOfMs) continue;
    eligible++;
    if (!newest || snapshot.startTimeMs > newest.startTimeMs) newest = snapshot;
  }
  if (newest) return { answer: "restore", identity, snapshot: newest, completeSnapshots: eligible };
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
