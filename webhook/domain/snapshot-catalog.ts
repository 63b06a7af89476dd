// The port between the restore decision and whatever knows the repository's snapshots.
// The decision only ever sees this view; the Kopia reader (webhook/kopia/) implements it.

import { parseRfc3339Ns } from "./rfc3339-time.ts";

/** A complete or incomplete snapshot of one Kopia source, as recorded in its manifest. */
export type SnapshotRecord = {
  /** The manifest ID, as `kopia snapshot list --json` prints it in `id`. */
  id: string;
  /** RFC 3339 with nanoseconds, as kopia prints it. */
  startTime: string;
  endTime: string;
  /** Milliseconds since the epoch of startTime, for ages and schedules. */
  startTimeMs: number;
  /** startTime and endTime in nanoseconds: what restore points and kopia's order compare. */
  startTimeNs: bigint;
  endTimeNs: bigint;
  /** Set when the manifest carries an `incompleteReason`: never a restore point. */
  incomplete: boolean;
  stats?: Record<string, unknown>;
  /**
   * The root directory's totals (`rootEntry.summ`): what a restore of this snapshot writes.
   * `stats` counts only what that upload read again, so it undercounts every later snapshot.
   */
  summary?: SnapshotSummary;
};

export type SnapshotSummary = { files: number; symlinks: number; dirs: number; size: number };

/** The root entry's `summ` of a snapshot manifest, when it holds the four totals. */
export function snapshotSummaryOf(manifestData: Readonly<Record<string, unknown>>): SnapshotSummary | undefined {
  const summ = (manifestData["rootEntry"] as { summ?: Record<string, unknown> } | undefined)?.summ;
  const { files, symlinks, dirs, size } = summ ?? {};
  if (typeof files !== "number" || typeof dirs !== "number" || typeof size !== "number") return undefined;
  return { files, symlinks: typeof symlinks === "number" ? symlinks : 0, dirs, size };
}

/** A record from the times as kopia wrote them; undefined when one is not an RFC 3339 time. */
export function snapshotRecord(fields: {
  id: string;
  startTime: string;
  endTime: string;
  incomplete: boolean;
  stats?: Record<string, unknown>;
  summary?: SnapshotSummary;
}): SnapshotRecord | undefined {
  const startTimeNs = parseRfc3339Ns(fields.startTime);
  const endTimeNs = parseRfc3339Ns(fields.endTime);
  if (startTimeNs === undefined || endTimeNs === undefined) return undefined;
  return { ...fields, startTimeMs: Number(startTimeNs / 1_000_000n), startTimeNs, endTimeNs };
}

/** kopia's order for one source's snapshots: start time, then end time. */
export function compareSnapshotsLikeKopia(a: SnapshotRecord, b: SnapshotRecord): number {
  if (a.startTimeNs !== b.startTimeNs) return a.startTimeNs < b.startTimeNs ? -1 : 1;
  if (a.endTimeNs !== b.endTimeNs) return a.endTimeNs < b.endTimeNs ? -1 : 1;
  return 0;
}

/**
 * What the catalog can say about one source identity (`username@hostname:/path`).
 * `readable` means the repository was read successfully within the freshness bound, so an
 * empty `snapshots` list is authoritative; anything else is `unreadable`, with a reason that a
 * person can act on.
 */
export type CatalogLookup =
  /** `snapshots` in kopia's order (compareSnapshotsLikeKopia). */
  { readable: true; snapshots: readonly SnapshotRecord[]; refreshedAtMs: number } | { readable: false; reason: string };

export interface SnapshotCatalog {
  /** Reads memory only: the admission path calls this on every request. */
  lookup(identity: string, nowMs: number): CatalogLookup;
}

/** The catalog used when no repository is configured: every answer says so. */
export function createUnconfiguredCatalog(): SnapshotCatalog {
  return {
    lookup: () => ({ readable: false, reason: "no Kopia repository is configured for pvc-guardian" }),
  };
}
