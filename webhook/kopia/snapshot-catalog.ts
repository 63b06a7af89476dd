// The in-memory snapshot catalog: identity (`username@hostname:/path`) → snapshots, loaded from
// the repository at start and refreshed on a timer. Admission reads memory only; an answer is
// authoritative only while the last read succeeded and is younger than the freshness bound.

import { compareSnapshotsLikeKopia, snapshotSummaryOf, type CatalogLookup, type SnapshotCatalog, type SnapshotRecord } from "../domain/snapshot-catalog.ts";
import { errorMessage } from "../domain/error-message.ts";
import type { Logger } from "../domain/logger.ts";
import { createFilesystemBlobStore } from "./filesystem-blob-store.ts";
import type { BlobStore } from "./blob-store.ts";
import { readPasswordFile } from "./password-file.ts";
import { isRepositoryError } from "./repository-error.ts";
import { type RepositoryReader, createRepositoryReader } from "./repository-reader.ts";
import { type SnapshotManifest, sourceIdentity } from "./snapshot-manifest.ts";

export type CatalogRefreshOutcome =
  | { ok: true; durationMs: number; blobsRead: number; keyDerivationMs: number; sources: number; snapshots: number }
  | { ok: false; durationMs: number; blobsRead: number; error: string };

export type CatalogHealth = {
  lastSuccessMs: number | null;
  lastError: string | null;
  ageMs: number | null;
  sources: number;
  snapshots: number;
  lastRefreshDurationMs: number | null;
  refreshFailuresTotal: number;
  /** Blobs read since start, across all refreshes. */
  blobsRead: number;
};

export type KopiaCatalog = SnapshotCatalog & {
  /** The initial load. Never throws: a failure is recorded as the last error. */
  start(): Promise<void>;
  stop(): void;
  /** Reads only blobs not seen before; concurrent calls share one read. */
  refresh(): Promise<CatalogRefreshOutcome>;
  /** On a miss, one shared refresh bounded by missRefreshTimeoutMs, then memory again. */
  lookupWithRefreshOnMiss(identity: string, nowMs: number): Promise<CatalogLookup>;
  health(): CatalogHealth;
};

export type KopiaCatalogDeps = {
  repositoryPath: string;
  passwordFile: string;
  refreshIntervalMs: number;
  freshnessBoundMs: number;
  missRefreshTimeoutMs: number;
  now?: () => number;
  onRefresh?: (outcome: CatalogRefreshOutcome) => void;
  log?: Logger;
  /** Another blob store (tests, later S3); defaults to the filesystem at repositoryPath. */
  store?: BlobStore;
};

const noSnapshots: readonly SnapshotRecord[] = Object.freeze([]);

/**
 * After a failed read the next one comes soon, doubling up to the cap, so answers are right again
 * within seconds of a fault being undone (a folder remounted, permissions back) instead of at the
 * next interval; every answer until then stays `unknown`.
 */
const FAILED_REFRESH_RETRY_FIRST_MS = 250;
const FAILED_REFRESH_RETRY_MAX_MS = 2_000;
/**
 * A second miss for the same identity within this long of the start of the read its first miss
 * made is answered from that read: the mutating and the validating review of one PVC arrive
 * milliseconds apart, and a backup of that identity landing in between is the same race as one
 * landing just after the first read began. Misses for other identities still read.
 */
const MISS_COALESCE_WINDOW_MS = 1_000;

function toRecord(snapshot: SnapshotManifest): SnapshotRecord {
  const stats = snapshot.data.stats;
  const summary = snapshotSummaryOf(snapshot.data);
  return {
    id: snapshot.id,
    startTime: snapshot.startTime,
    endTime: snapshot.endTime,
    startTimeMs: Number(snapshot.startTimeNs / 1_000_000n),
    startTimeNs: snapshot.startTimeNs,
    endTimeNs: snapshot.endTimeNs,
    incomplete: snapshot.incompleteReason !== undefined,
    ...(typeof stats === "object" && stats !== null ? { stats: stats as Record<string, unknown> } : {}),
    ...(summary === undefined ? {} : { summary }),
  };
}

/** Records by manifest, so a refresh that adds one snapshot does not rebuild the others. */
const recordsByManifest = new WeakMap<SnapshotManifest, SnapshotRecord>();

function recordOf(snapshot: SnapshotManifest): SnapshotRecord {
  let record = recordsByManifest.get(snapshot);
  if (record === undefined) {
    record = Object.freeze(toRecord(snapshot));
    recordsByManifest.set(snapshot, record);
  }
  return record;
}

function indexByIdentity(snapshots: readonly SnapshotManifest[]): Map<string, readonly SnapshotRecord[]> {
  const grouped = new Map<string, SnapshotManifest[]>();
  for (const snapshot of snapshots) {
    const identity = sourceIdentity(snapshot.source);
    const list = grouped.get(identity);
    if (list === undefined) grouped.set(identity, [snapshot]);
    else list.push(snapshot);
  }
  const result = new Map<string, readonly SnapshotRecord[]>();
  for (const [identity, list] of grouped) {
    list.sort((a, b) => compareSnapshotsLikeKopia(recordOf(a), recordOf(b)));
    result.set(identity, Object.freeze(list.map(recordOf)));
  }
  return result;
}

function describeError(error: unknown): string {
  const message = errorMessage(error);
  return isRepositoryError(error) ? `${error.kind}: ${message}` : message;
}

export function createKopiaCatalog(deps: KopiaCatalogDeps): KopiaCatalog {
  const now = deps.now ?? Date.now;
  const log = deps.log?.child({ controller: "catalog" });
  const reader: RepositoryReader = createRepositoryReader({
    store: deps.store ?? createFilesystemBlobStore({ rootPath: deps.repositoryPath }),
    readPassword: () => readPasswordFile(deps.passwordFile),
  });

  let byIdentity = new Map<string, readonly SnapshotRecord[]>();
  let snapshotCount = 0;
  let lastSuccessMs: number | null = null;
  let lastError: string | null = null;
  let lastRefreshFailed = false;
  let lastRefreshDurationMs: number | null = null;
  let refreshFailuresTotal = 0;
  let blobsReadTotal = 0;
  let inFlight: Promise<CatalogRefreshOutcome> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let isRunning = false;
  let consecutiveFailures = 0;
  /** When the read behind the current snapshots began (its results include every blob listed then). */
  let lastSuccessStartedMs: number | null = null;
  /** Identity → the start of the successful read that answered its last miss. */
  const missAnsweredBy = new Map<string, number>();

  /** The next timed read: the interval after a success, a short backoff after failures. */
  function scheduleNext(outcome: CatalogRefreshOutcome): void {
    if (!isRunning) return;
    clearTimeout(timer);
    consecutiveFailures = outcome.ok ? 0 : consecutiveFailures + 1;
    const delayMs = outcome.ok
      ? deps.refreshIntervalMs
      : Math.min(FAILED_REFRESH_RETRY_MAX_MS, FAILED_REFRESH_RETRY_FIRST_MS * 2 ** (consecutiveFailures - 1), deps.refreshIntervalMs);
    timer = setTimeout(() => void refresh(), delayMs);
    timer.unref();
  }

  async function refreshOnce(): Promise<CatalogRefreshOutcome> {
    const started = performance.now();
    const startedMs = now();
    let outcome: CatalogRefreshOutcome;
    try {
      const result = await reader.read();
      byIdentity = indexByIdentity(result.snapshots);
      snapshotCount = result.snapshots.length;
      lastSuccessMs = now();
      lastSuccessStartedMs = startedMs;
      lastRefreshFailed = false;
      lastError = null;
      blobsReadTotal += result.blobsRead;
      outcome = {
        ok: true,
        durationMs: performance.now() - started,
        blobsRead: result.blobsRead,
        keyDerivationMs: result.keyDerivationMs,
        sources: byIdentity.size,
        snapshots: snapshotCount,
      };
      log?.debug({ ...outcome, durationMs: Math.round(outcome.durationMs) }, "snapshot catalog refreshed");
    } catch (error) {
      lastRefreshFailed = true;
      lastError = describeError(error);
      refreshFailuresTotal++;
      outcome = { ok: false, durationMs: performance.now() - started, blobsRead: 0, error: lastError };
      log?.warn({ err: error, durationMs: Math.round(outcome.durationMs) }, "snapshot catalog refresh failed");
    }
    lastRefreshDurationMs = outcome.durationMs;
    try {
      deps.onRefresh?.(outcome);
    } catch (error) {
      // A failing metrics hook must not turn a good read into a failed refresh.
      log?.error({ err: error }, "kopia catalog onRefresh hook failed");
    }
    return outcome;
  }

  function refresh(): Promise<CatalogRefreshOutcome> {
    inFlight ??= refreshOnce().then((outcome) => {
      inFlight = undefined;
      scheduleNext(outcome);
      return outcome;
    });
    return inFlight;
  }

  function lookup(identity: string, nowMs: number): CatalogLookup {
    if (lastSuccessMs === null) {
      return {
        readable: false,
        reason:
          lastError === null
            ? "the Kopia snapshot catalog has not read the repository yet"
            : `the Kopia repository at ${deps.repositoryPath} could not be read: ${lastError}`,
      };
    }
    if (lastRefreshFailed) {
      return { readable: false, reason: `the last read of the Kopia repository at ${deps.repositoryPath} failed: ${lastError}` };
    }
    const ageMs = nowMs - lastSuccessMs;
    if (ageMs > deps.freshnessBoundMs) {
      return {
        readable: false,
        reason: `the Kopia snapshot catalog is stale: last read ${Math.round(ageMs / 1000)} s ago, over the ${Math.round(deps.freshnessBoundMs / 1000)} s bound`,
      };
    }
    return { readable: true, snapshots: byIdentity.get(identity) ?? noSnapshots, refreshedAtMs: lastSuccessMs };
  }

  return {
    lookup,

    async start() {
      isRunning = true;
      const outcome = await refresh();
      if (outcome.ok) log?.info({ sources: outcome.sources, snapshots: outcome.snapshots, durationMs: Math.round(outcome.durationMs) }, "kopia catalog loaded");
    },

    stop() {
      isRunning = false;
      clearTimeout(timer);
      timer = undefined;
    },

    refresh,

    async lookupWithRefreshOnMiss(identity, nowMs) {
      const first = lookup(identity, nowMs);
      if (first.readable && first.snapshots.length > 0) return first;
      const answeredBy = missAnsweredBy.get(identity);
      if (first.readable && answeredBy !== undefined && answeredBy === lastSuccessStartedMs && nowMs - answeredBy <= MISS_COALESCE_WINDOW_MS) return first;
      let deadline: NodeJS.Timeout | undefined;
      await Promise.race([
        refresh(),
        new Promise<void>((resolve) => {
          deadline = setTimeout(resolve, deps.missRefreshTimeoutMs);
        }),
      ]);
      clearTimeout(deadline);
      const answer = lookup(identity, Math.max(nowMs, now()));
      if (answer.readable && lastSuccessStartedMs !== null) {
        for (const [key, startedMs] of missAnsweredBy) if (now() - startedMs > MISS_COALESCE_WINDOW_MS) missAnsweredBy.delete(key);
        missAnsweredBy.set(identity, lastSuccessStartedMs);
      }
      return answer;
    },

    health() {
      const nowMs = now();
      return {
        lastSuccessMs,
        lastError,
        ageMs: lastSuccessMs === null ? null : nowMs - lastSuccessMs,
        sources: byIdentity.size,
        snapshots: snapshotCount,
        lastRefreshDurationMs,
        refreshFailuresTotal,
        blobsRead: blobsReadTotal,
      };
    },
  };
}
