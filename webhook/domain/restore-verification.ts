// Whether a restore put back what the decision chose: the mover's own report, kept by VolSync in
// the ReplicationDestination's status.latestMoverStatus, against the pinned snapshot's numbers.
//
// What kopia v0.22.3 prints at the end of `snapshot restore` (cli/command_restore.go):
//   Restored 3 files, 5 directories and 2 symbolic links (1.3 KB)[, skipped N (size)]
//   [, deleted directories N][, deleted files N][, deleted symbolic links N][, ignored N errors].
// Measured with the real kopia (test/integration/kopia/restore-verification.test.ts): the
// directory count includes the snapshot's root directory, exactly as the snapshot's own
// directory count does, and the size is the sum of the restored files' sizes, printed rounded to
// one decimal (base 10 by default, base 2 with KOPIA_BYTES_STRING_BASE_2), so it can only be
// compared as kopia's text.
//
// VolSync filters the mover's logs before storing them: the Restored line survives only when
// its controller runs with MOVER_LOG_DEBUG=true or when the line says errors were ignored.
// Without it a successful restore is `unverified`, never `verified`.

import { ANNOTATION_RESTORE_SNAPSHOT_STATS } from "./wire-names.ts";

export const restoreVerdicts = ["verified", "mismatch", "empty", "failed", "unverified"] as const;
export type RestoreVerdict = (typeof restoreVerdicts)[number];

/**
 * The pinned snapshot's totals, as the stats annotation carries them. symlinkCount is compared
 * when present.
 */
export type PinnedSnapshotStats = { fileCount: number; dirCount: number; totalSize: number; symlinkCount?: number };

/** What kopia reported at the end of one restore. */
export type RestoredReport = {
  fileCount: number;
  dirCount: number;
  symlinkCount: number;
  /** Exactly as printed, e.g. "1.3 KB" or "899 B". */
  sizeText: string;
  skippedCount: number;
  ignoredErrorCount: number;
};

export type RestoreVerification =
  /** The mover has not finished (no result yet): nothing to say. */
  { finished: false } | { finished: true; verdict: RestoreVerdict; detail: string };

export type RestoreVerificationInput = {
  /** The manifest id the decision pinned. */
  snapshotId: string;
  /** The stats annotation's value, verbatim; undefined when absent. */
  pinnedStats: string | undefined;
  /** The ReplicationDestination's status.latestMoverStatus, as stored (unvalidated). */
  moverStatus: unknown;
};

const RESTORED_LINE = /Restored (\d+) files, (\d+) directories and (\d+) symbolic links \(([^)]*)\)(.*)$/;
// VolSync's mover script prints this and exits 0 when no snapshot matched: the volume stays empty.
const NO_ELIGIBLE_SNAPSHOTS = "No eligible snapshots";

/** The last `Restored …` line in the mover's logs, parsed; undefined when there is none. */
export function parseRestoredReport(logs: string): RestoredReport | undefined {
  const lines = logs.split(/\r?\n|\r/);
  for (let index = lines.length - 1; index >= 0; index--) {
    const match = RESTORED_LINE.exec(lines[index]!);
    if (match === null) continue;
    const tail = match[5]!;
    return {
      fileCount: Number(match[1]),
      dirCount: Number(match[2]),
      symlinkCount: Number(match[3]),
      sizeText: match[4]!,
      skippedCount: Number(/, skipped (\d+) \(/.exec(tail)?.[1] ?? 0),
      ignoredErrorCount: Number(/, ignored (\d+) errors/.exec(tail)?.[1] ?? 0),
    };
  }
  return undefined;
}

/**
 * Go's `%.1f` on a float64: the correctly rounded tenth, ties (exact .x5 values) to the even
 * tenth. JavaScript's toFixed rounds the same except on ties, which it rounds up. A double is
 * exactly halfway between two tenths only when it ends in .25 or .75, i.e. when 4·f is an odd
 * integer (4·f is exact).
 */
function goFormatTenths(value: number): string {
  const quarters = value * 4;
  if (Number.isInteger(quarters) && Math.abs(quarters % 2) === 1) {
    const lower = Math.floor(value * 10);
    return ((lower % 2 === 0 ? lower : lower + 1) / 10).toFixed(1);
  }
  return value.toFixed(1);
}

/** kopia's niceNumber: one decimal, trailing zeros and then a trailing point removed. */
function niceNumber(value: number): string {
  return goFormatTenths(value).replace(/0+$/, "").replace(/\.$/, "");
}

/**
 * The text kopia prints for a byte count (internal/units BytesStringBase10/Base2): divide by
 * the base while the value is at least 0.9 of it, so 899 B stays bytes and 900 B is "0.9 KB".
 */
export function kopiaBytesText(bytes: number, base: 1000 | 1024): string {
  const prefixes = base === 1000 ? ["", "K", "M", "G", "T", "P", "E"] : ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
  let value = bytes;
  for (const prefix of prefixes) {
    if (value < 0.9 * base) return `${niceNumber(value)} ${prefix}B`;
    value /= base;
  }
  return `${niceNumber(value)} ${prefixes[prefixes.length - 1]}B`;
}

/** The stats annotation's JSON, with the keys in a fixed order. */
export function formatPinnedSnapshotStats(stats: PinnedSnapshotStats): string {
  return JSON.stringify({
    fileCount: stats.fileCount,
    dirCount: stats.dirCount,
    totalSize: stats.totalSize,
    ...(stats.symlinkCount === undefined ? {} : { symlinkCount: stats.symlinkCount }),
  });
}

export function parsePinnedSnapshotStats(text: string | undefined): { ok: true; stats: PinnedSnapshotStats } | { ok: false; reason: string } {
  if (text === undefined) return { ok: false, reason: "it is missing" };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, reason: "it is not JSON" };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return { ok: false, reason: "it is not a JSON object" };
  const record = value as Record<string, unknown>;
  const isCount = (field: unknown): field is number => typeof field === "number" && Number.isSafeInteger(field) && field >= 0;
  for (const key of ["fileCount", "dirCount", "totalSize"]) {
    if (!isCount(record[key])) return { ok: false, reason: `its ${key} is not a non-negative integer` };
  }
  if (record["symlinkCount"] !== undefined && !isCount(record["symlinkCount"])) return { ok: false, reason: "its symlinkCount is not a non-negative integer" };
  return {
    ok: true,
    stats: {
      fileCount: record["fileCount"] as number,
      dirCount: record["dirCount"] as number,
      totalSize: record["totalSize"] as number,
      ...(record["symlinkCount"] === undefined ? {} : { symlinkCount: record["symlinkCount"] as number }),
    },
  };
}

/** Whether kopia's size text is how it prints this byte count, in either base. */
function sizeTextMatches(sizeText: string, bytes: number): boolean {
  return sizeText === kopiaBytesText(bytes, 1000) || sizeText === kopiaBytesText(bytes, 1024);
}

function describeRestored(report: RestoredReport): string {
  return `${report.fileCount} files, ${report.dirCount} directories and ${report.symlinkCount} symbolic links (${report.sizeText})`;
}

function describePinned(stats: PinnedSnapshotStats): string {
  const links = stats.symlinkCount === undefined ? "" : ` and ${stats.symlinkCount} symbolic links`;
  return `${stats.fileCount} files, ${stats.dirCount} directories${links} (${stats.totalSize} bytes, which kopia prints as ${kopiaBytesText(stats.totalSize, 1000)})`;
}

/** The last log line that reads like an error, to say why a mover failed. */
function lastErrorLine(logs: string): string | undefined {
  const lines = logs
    .split(/\r?\n|\r/)
    .map((line) => line.trim())
    .filter((line) => /error|failed|unable to/i.test(line));
  const line = lines.at(-1);
  if (line === undefined) return undefined;
  return line.length > 200 ? `${line.slice(0, 197)}...` : line;
}

export function verifyRestore(input: RestoreVerificationInput): RestoreVerification {
  const status = (typeof input.moverStatus === "object" && input.moverStatus !== null ? input.moverStatus : {}) as { result?: unknown; logs?: unknown };
  const logs = typeof status.logs === "string" ? status.logs : "";
  const snapshot = `snapshot ${input.snapshotId}`;
  if (status.result === "Failed") {
    const reason = lastErrorLine(logs);
    return { finished: true, verdict: "failed", detail: `The mover failed to restore ${snapshot}${reason === undefined ? "" : ` (${reason})`}.` };
  }
  if (status.result !== "Successful") return { finished: false };
  if (logs.includes(NO_ELIGIBLE_SNAPSHOTS)) {
    return {
      finished: true,
      verdict: "empty",
      detail: `The mover found no eligible snapshot ("${NO_ELIGIBLE_SNAPSHOTS} found") although ${snapshot} was chosen, so the volume was handed over empty.`,
    };
  }
  const report = parseRestoredReport(logs);
  if (report === undefined) {
    return {
      finished: true,
      verdict: "unverified",
      detail:
        `The mover reports success for ${snapshot}, but its stored logs hold no "Restored ..." line to compare: ` +
        `VolSync keeps that line only when its controller runs with MOVER_LOG_DEBUG=true, or when kopia ignored errors.`,
    };
  }
  const pinned = parsePinnedSnapshotStats(input.pinnedStats);
  if (!pinned.ok) {
    return {
      finished: true,
      verdict: "unverified",
      detail: `The mover restored ${describeRestored(report)} from ${snapshot}, but the annotation ${ANNOTATION_RESTORE_SNAPSHOT_STATS} cannot be compared with it: ${pinned.reason}.`,
    };
  }
  const { stats } = pinned;
  const agrees =
    report.fileCount === stats.fileCount &&
    report.dirCount === stats.dirCount &&
    (stats.symlinkCount === undefined || report.symlinkCount === stats.symlinkCount) &&
    sizeTextMatches(report.sizeText, stats.totalSize);
  const extras = [
    ...(report.skippedCount > 0 ? [`kopia skipped ${report.skippedCount} files that already existed`] : []),
    ...(report.ignoredErrorCount > 0 ? [`kopia ignored ${report.ignoredErrorCount} errors (such as permissions it could not set)`] : []),
  ];
  const note = extras.length === 0 ? "" : `; ${extras.join(" and ")}`;
  if (agrees) {
    return { finished: true, verdict: "verified", detail: `The mover restored ${describeRestored(report)}, as ${snapshot} records${note}.` };
  }
  return {
    finished: true,
    verdict: "mismatch",
    detail: `The mover restored ${describeRestored(report)}, but ${snapshot} holds ${describePinned(stats)}${note}.`,
  };
}
