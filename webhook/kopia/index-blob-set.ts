// Which index blobs are live. Kopia keeps superseded index blobs around for a while after
// compaction, so reading every index blob could resurrect deleted contents; this follows the same
// selection kopia makes, for both index managers (epochs, and the compaction-log one that format
// version 1 repositories use).

import type { BlobMetadata, BlobStore } from "./blob-store.ts";
import { RepositoryError } from "./repository-error.ts";

export type IndexBlobSet = {
  blobs: BlobMetadata[];
  /** Deleted index entries at or before this time are treated as never existing. */
  deletionWatermarkSeconds: number;
};

/** The number of most recent epochs whose single-epoch compactions are not trusted yet. */
const unsettledEpochCount = 2;

function epochNumber(id: string, prefixLength: number): number | undefined {
  const underscore = id.indexOf("_");
  const digits = id.slice(prefixLength, underscore >= 0 ? underscore : undefined);
  return /^\d+$/.test(digits) ? Number(digits) : undefined;
}

function epochRange(id: string): [number, number] | undefined {
  const parts = id.slice(2).split("_");
  if (parts.length < 3 || !/^\d+$/.test(parts[0]!) || !/^\d+$/.test(parts[1]!)) return undefined;
  return [Number(parts[0]), Number(parts[1])];
}

/**
 * The first complete set among blobs named `<any>-s<set>-c<count>`, in listing order: a set is
 * complete once `count` blobs with the same set ID have been seen. A blob whose name does not
 * follow the convention is a set of its own.
 */
export function firstCompleteSet(blobs: readonly BlobMetadata[]): BlobMetadata[] | undefined {
  const sets = new Map<string, BlobMetadata[]>();
  for (const blob of blobs) {
    const parts = blob.id.split("-");
    const count = parts.length >= 3 && parts[1]!.startsWith("s") && parts[2]!.startsWith("c") ? Number(parts[2]!.slice(1)) : Number.NaN;
    if (!Number.isInteger(count) || !/^\d+$/.test(parts[2]?.slice(1) ?? "")) return [blob];
    const members = sets.get(parts[1]!) ?? [];
    members.push(blob);
    sets.set(parts[1]!, members);
    if (members.length === count) return members;
  }
  return undefined;
}

type RangeCheckpoint = { minEpoch: number; maxEpoch: number; blobs: BlobMetadata[] };

function longestRangeChain(ranges: RangeCheckpoint[]): RangeCheckpoint[] {
  const byMin = new Map<number, RangeCheckpoint[]>();
  for (const range of ranges) byMin.set(range.minEpoch, [...(byMin.get(range.minEpoch) ?? []), range]);
  const memo = new Map<number, RangeCheckpoint[]>();
  const from = (start: number): RangeCheckpoint[] => {
    const known = memo.get(start);
    if (known !== undefined) return known;
    let longest = 0;
    let best: RangeCheckpoint[] = [];
    for (const range of byMin.get(start) ?? []) {
      const chain = [range, ...from(range.maxEpoch + 1)];
      const last = chain[chain.length - 1]!.maxEpoch;
      if (last > longest || (last === longest && chain.length < best.length)) {
        longest = last;
        best = chain;
      }
    }
    memo.set(start, best);
    return best;
  };
  return from(0);
}

/** Selects the live index blobs of an epoch-managed repository from one listing of `x` blobs. */
export function selectEpochIndexBlobs(listing: readonly BlobMetadata[]): IndexBlobSet {
  let writeEpoch = 0;
  let deletionWatermarkSeconds = 0;
  const singleEpoch = new Map<number, BlobMetadata[]>();
  const uncompacted = new Map<number, BlobMetadata[]>();
  const ranges = new Map<string, BlobMetadata[]>();

  for (const blob of listing) {
    const kind = blob.id.slice(0, 2);
    if (kind === "xe") {
      const epoch = epochNumber(blob.id, 2);
      if (epoch !== undefined && epoch > writeEpoch) writeEpoch = epoch;
    } else if (kind === "xw") {
      const seconds = /^xw\d+$/.test(blob.id) ? Number(blob.id.slice(2)) : undefined;
      if (seconds !== undefined && seconds > deletionWatermarkSeconds) deletionWatermarkSeconds = seconds;
    } else if (kind === "xs" || kind === "xn") {
      const epoch = epochNumber(blob.id, 2);
      if (epoch === undefined) continue;
      const target = kind === "xs" ? singleEpoch : uncompacted;
      target.set(epoch, [...(target.get(epoch) ?? []), blob]);
    } else if (kind === "xr") {
      const range = epochRange(blob.id);
      if (range === undefined) continue;
      const key = `${range[0]}_${range[1]}`;
      ranges.set(key, [...(ranges.get(key) ?? []), blob]);
    }
  }

  // Kopia writes an epoch's marker before any index blob of that epoch, so a blob beyond W+1 means
  // markers are missing; ignoring its blobs, as kopia would, could hide snapshots.
  const newestIndexEpoch = Math.max(-1, ...uncompacted.keys(), ...singleEpoch.keys());
  if (newestIndexEpoch > writeEpoch + 1) {
    throw new RepositoryError("corrupt", `index blobs exist for epoch ${newestIndexEpoch} but the newest epoch marker is ${writeEpoch}`);
  }

  const completeRanges: RangeCheckpoint[] = [];
  for (const [key, blobs] of ranges) {
    const complete = firstCompleteSet(blobs);
    const [minEpoch, maxEpoch] = key.split("_").map(Number) as [number, number];
    if (complete !== undefined) completeRanges.push({ minEpoch, maxEpoch, blobs: complete });
  }

  const selected: BlobMetadata[] = [];
  let startEpoch = 0;
  for (const range of longestRangeChain(completeRanges)) {
    if (range.maxEpoch > startEpoch) {
      selected.push(...range.blobs);
      startEpoch = range.maxEpoch + 1;
    }
  }
  const lastSettledEpoch = writeEpoch - unsettledEpochCount;
  for (let epoch = startEpoch; epoch <= writeEpoch + 1; epoch++) {
    const compacted = epoch <= lastSettledEpoch ? firstCompleteSet(singleEpoch.get(epoch) ?? []) : undefined;
    selected.push(...(compacted ?? uncompacted.get(epoch) ?? []));
  }
  return { blobs: selected, deletionWatermarkSeconds };
}

export type CompactionLog = { inputIds: string[]; outputIds: string[] };

export function parseCompactionLog(plaintext: Buffer, what: string): CompactionLog {
  let raw: { inputMetadata?: unknown; outputMetadata?: unknown };
  try {
    raw = JSON.parse(plaintext.toString("utf8"));
  } catch (error) {
    throw new RepositoryError("corrupt", `${what} is not JSON`, { cause: error });
  }
  const ids = (list: unknown): string[] => {
    if (list === undefined || list === null) return [];
    if (!Array.isArray(list)) throw new RepositoryError("corrupt", `${what} has a malformed blob list`);
    return list.map((item: { id?: unknown }) => {
      if (typeof item?.id !== "string") throw new RepositoryError("corrupt", `${what} has a blob without an id`);
      return item.id;
    });
  };
  return { inputIds: ids(raw.inputMetadata), outputIds: ids(raw.outputMetadata) };
}

/** The blob a repository upgrade leaves so that old kopia versions stop reading the `n` index. */
const upgradePoisonBlobId = "n00000000000000000000000000000000-repository_unreadable_by_this_kopia_version_upgrade_required";

/**
 * Selects the live `n` index blobs of a repository without epochs: an index blob named as an input
 * of a compaction log whose outputs all exist has been replaced by those outputs.
 */
export async function selectCompactionLogIndexBlobs(
  store: BlobStore,
  readCompactionLog: (blob: BlobMetadata) => Promise<CompactionLog>,
): Promise<IndexBlobSet> {
  const [indexBlobs, logBlobs] = await Promise.all([store.list("n"), store.list("m")]);
  const live = new Map(indexBlobs.filter((b) => b.id !== upgradePoisonBlobId).map((b) => [b.id, b]));
  const present = new Set(indexBlobs.map((b) => b.id));
  const logs = await Promise.all(logBlobs.map(readCompactionLog));
  for (const log of logs) {
    if (!log.outputIds.every((id) => present.has(id))) continue;
    for (const id of log.inputIds) live.delete(id);
  }
  return { blobs: [...live.values()], deletionWatermarkSeconds: 0 };
}
