// The port between the restore decision and whatever knows the repository's snapshots.
// The decision only ever sees this view; the Kopia reader (webhook/kopia/) implements it.

/** A complete or incomplete snapshot of one Kopia source, as recorded in its manifest. */
export type SnapshotRecord = {
  /** The manifest ID, as `kopia snapshot list --json` prints it in `id`. */
  id: string;
  /** RFC 3339 with nanoseconds, as kopia prints it. */
  startTime: string;
  endTime: string;
  /** Milliseconds since the epoch of startTime, for comparisons without re-parsing. */
  startTimeMs: number;
  /** Set when the manifest carries an `incompleteReason`: never a restore point. */
  incomplete: boolean;
  stats?: Record<string, unknown>;
};

/**
 * What the catalog can say about one source identity (`username@hostname:/path`).
 * `readable` means the repository was read successfully within the freshness bound, so an
 * empty `snapshots` list is authoritative; anything else is `unreadable`, with a reason that a
 * person can act on.
 */
export type CatalogLookup =
  | { readable: true; snapshots: readonly SnapshotRecord[]; refreshedAtMs: number }
  | { readable: false; reason: string };

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
