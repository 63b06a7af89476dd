// Snapshot manifests: manifests labelled `type=snapshot`, whose data records one point-in-time
// copy of a source (`userName@host:/path`).

import type { ManifestEntry } from "./manifest-entries.ts";
import { parseTimestampNs } from "./manifest-entries.ts";
import { RepositoryError } from "./repository-error.ts";

export type SnapshotSource = { host: string; userName: string; path: string };

export type SnapshotManifest = {
  /** The manifest ID; the stored data carries an empty id. */
  id: string;
  source: SnapshotSource;
  startTime: string;
  endTime: string;
  startTimeNs: bigint;
  endTimeNs: bigint;
  /** kopia's incomplete reason (`checkpoint`, `canceled`, `limit reached`), absent when complete. */
  incompleteReason?: string;
  /** The stored JSON object, field order kept, for output that mirrors kopia's. */
  data: Record<string, unknown>;
};

export function sourceIdentity(source: SnapshotSource): string {
  return `${source.userName}@${source.host}:${source.path}`;
}

export function toSnapshotManifest(entry: ManifestEntry): SnapshotManifest {
  const what = `snapshot manifest ${entry.id}`;
  const data = entry.data;
  if (typeof data !== "object" || data === null || Array.isArray(data)) throw new RepositoryError("corrupt", `${what} has no data object`);
  const record = data as Record<string, unknown>;
  const source = record.source as Partial<SnapshotSource> | undefined;
  if (typeof source?.host !== "string" || typeof source.userName !== "string" || typeof source.path !== "string") {
    throw new RepositoryError("corrupt", `${what} has a malformed source`);
  }
  if (typeof record.startTime !== "string" || typeof record.endTime !== "string") {
    throw new RepositoryError("corrupt", `${what} has no start or end time`);
  }
  const incomplete = record.incomplete;
  if (incomplete !== undefined && typeof incomplete !== "string") throw new RepositoryError("corrupt", `${what} has a malformed incomplete reason`);
  return {
    id: entry.id,
    source: { host: source.host, userName: source.userName, path: source.path },
    startTime: record.startTime,
    endTime: record.endTime,
    startTimeNs: parseTimestampNs(record.startTime, what),
    endTimeNs: parseTimestampNs(record.endTime, what),
    ...(incomplete === undefined || incomplete === "" ? {} : { incompleteReason: incomplete }),
    data: record,
  };
}

/**
 * All snapshots in kopia's listing order: sources by `userName@host:path` (byte order), then each
 * source's snapshots by start time, end time breaking ties.
 */
export function sortSnapshotsLikeKopia(snapshots: readonly SnapshotManifest[]): SnapshotManifest[] {
  const byteOrder = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));
  return [...snapshots].sort((a, b) => {
    const bySource = byteOrder(sourceIdentity(a.source), sourceIdentity(b.source));
    if (bySource !== 0) return bySource;
    if (a.startTimeNs !== b.startTimeNs) return a.startTimeNs < b.startTimeNs ? -1 : 1;
    if (a.endTimeNs !== b.endTimeNs) return a.endTimeNs < b.endTimeNs ? -1 : 1;
    return 0;
  });
}
