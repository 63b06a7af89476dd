import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  formatPinnedSnapshotStats,
  kopiaBytesText,
  parsePinnedSnapshotStats,
  parseRestoredReport,
  verifyRestore,
  type RestoreVerdict,
} from "../../../webhook/domain/restore-verification.ts";

// Byte texts: the kopia rows were printed by the real kopia v0.22.3 restoring snapshots of that
// size; the tie rows were checked against Go's own fmt.Sprintf("%.1f") (which rounds exact
// halves to even, where JavaScript's toFixed rounds them up); the threshold rows follow from
// kopia's rule "divide while the value is at least 0.9 of the base", worked by hand.
const byteTexts: Array<{ bytes: number; base10: string; base2: string; source: string }> = [
  { bytes: 1257, base10: "1.3 KB", base2: "1.2 KiB", source: "kopia" },
  { bytes: 1250, base10: "1.2 KB", base2: "1.2 KiB", source: "kopia (1.25 is a tie: to even)" },
  { bytes: 1_250_000, base10: "1.2 MB", base2: "1.2 MiB", source: "kopia" },
  { bytes: 0, base10: "0 B", base2: "0 B", source: "hand" },
  { bytes: 5, base10: "5 B", base2: "5 B", source: "hand" },
  { bytes: 899, base10: "899 B", base2: "899 B", source: "hand: below 0.9 x 1000" },
  { bytes: 900, base10: "0.9 KB", base2: "900 B", source: "hand: 900 is 0.9 x 1000 but under 0.9 x 1024" },
  { bytes: 922, base10: "0.9 KB", base2: "0.9 KiB", source: "hand: 922 >= 921.6" },
  { bytes: 1000, base10: "1 KB", base2: "1 KiB", source: "hand: trailing .0 dropped" },
  { bytes: 1750, base10: "1.8 KB", base2: "1.7 KiB", source: "Go: 1.75 is a tie, 1.8 is even" },
  { bytes: 2250, base10: "2.2 KB", base2: "2.2 KiB", source: "Go: 2.25 is a tie, 2.2 is even" },
  { bytes: 1050, base10: "1.1 KB", base2: "1 KiB", source: "Go: 1050/1000 is a little above 1.05" },
  { bytes: 899_999, base10: "900 KB", base2: "878.9 KiB", source: "Go: 899.999 rounds to 900.0, trailing .0 dropped" },
  { bytes: 900_000, base10: "0.9 MB", base2: "878.9 KiB", source: "hand" },
  { bytes: 1_048_576, base10: "1 MB", base2: "1 MiB", source: "Go" },
  { bytes: 123_456_789, base10: "123.5 MB", base2: "117.7 MiB", source: "Go" },
];

describe("kopiaBytesText", () => {
  for (const row of byteTexts) {
    it(`prints ${row.bytes} bytes as "${row.base10}" and "${row.base2}" (${row.source})`, () => {
      assert.equal(kopiaBytesText(row.bytes, 1000), row.base10);
      assert.equal(kopiaBytesText(row.bytes, 1024), row.base2);
    });
  }
});

describe("parseRestoredReport", () => {
  it("reads kopia's line with every optional tail", () => {
    const report = parseRestoredReport(
      "INFO: Executing restore command...\nRestored 3 files, 5 directories and 2 symbolic links (1.3 KB), skipped 4 (12 B), deleted directories 1, deleted files 2, deleted symbolic links 3, ignored 7 errors.\nINFO: Snapshot restore completed successfully",
    );
    assert.deepEqual(report, { fileCount: 3, dirCount: 5, symlinkCount: 2, sizeText: "1.3 KB", skippedCount: 4, ignoredErrorCount: 7 });
  });
  it("takes the last line when there are several", () => {
    const report = parseRestoredReport(
      "Restored 1 files, 1 directories and 0 symbolic links (1 B).\r\nRestored 9 files, 2 directories and 0 symbolic links (10 B).",
    );
    assert.equal(report?.fileCount, 9);
  });
  it("finds nothing in logs without the line", () => {
    assert.equal(parseRestoredReport("INFO: Snapshot restore completed successfully\n"), undefined);
  });
});

describe("pinned stats annotation", () => {
  it("round-trips through its JSON", () => {
    const stats = { fileCount: 3, dirCount: 5, totalSize: 1257, symlinkCount: 2 };
    assert.equal(formatPinnedSnapshotStats(stats), '{"fileCount":3,"dirCount":5,"totalSize":1257,"symlinkCount":2}');
    assert.deepEqual(parsePinnedSnapshotStats(formatPinnedSnapshotStats(stats)), { ok: true, stats });
  });
  for (const [text, reason] of [
    [undefined, "it is missing"],
    ["{", "it is not JSON"],
    ["[1,2]", "it is not a JSON object"],
    ['{"fileCount":3,"dirCount":5}', "its totalSize is not a non-negative integer"],
    ['{"fileCount":-1,"dirCount":5,"totalSize":1}', "its fileCount is not a non-negative integer"],
    ['{"fileCount":1.5,"dirCount":5,"totalSize":1}', "its fileCount is not a non-negative integer"],
    ['{"fileCount":"3","dirCount":5,"totalSize":1}', "its fileCount is not a non-negative integer"],
    ['{"fileCount":3,"dirCount":5,"totalSize":1,"symlinkCount":null}', "its symlinkCount is not a non-negative integer"],
  ] as const) {
    it(`refuses ${text ?? "an absent annotation"}: ${reason}`, () => {
      assert.deepEqual(parsePinnedSnapshotStats(text), { ok: false, reason });
    });
  }
});

const STATS = '{"fileCount":3,"dirCount":5,"totalSize":1257}';
const LINE = "Restored 3 files, 5 directories and 2 symbolic links (1.3 KB).";
const done = (logs: string, result = "Successful") => ({ result, logs });

const verdicts: Array<{ name: string; moverStatus: unknown; pinnedStats?: string; verdict: RestoreVerdict | "not finished"; detailIncludes?: string[] }> = [
  { name: "no status yet is not finished", moverStatus: undefined, pinnedStats: STATS, verdict: "not finished" },
  { name: "a status without a result is not finished", moverStatus: { logs: "Processed 1 of 3" }, pinnedStats: STATS, verdict: "not finished" },
  { name: "an unknown result is not finished", moverStatus: { result: "Running" }, pinnedStats: STATS, verdict: "not finished" },
  {
    name: "matching counts and size are verified",
    moverStatus: done(`INFO: Executing restore command...\n${LINE}\nINFO: Snapshot restore completed successfully`),
    pinnedStats: STATS,
    verdict: "verified",
    detailIncludes: ["3 files, 5 directories and 2 symbolic links (1.3 KB)", "snapshot k1"],
  },
  {
    name: "the base-2 size text is verified too",
    moverStatus: done("Restored 3 files, 5 directories and 2 symbolic links (1.2 KiB)."),
    pinnedStats: STATS,
    verdict: "verified",
  },
  {
    name: "an ignored-errors tail still verifies when the numbers agree, and says so",
    moverStatus: done("Restored 3 files, 5 directories and 2 symbolic links (1.3 KB), ignored 2 errors."),
    pinnedStats: STATS,
    verdict: "verified",
    detailIncludes: ["ignored 2 errors"],
  },
  {
    name: "a different file count is a mismatch naming both sides",
    moverStatus: done("Restored 2 files, 5 directories and 2 symbolic links (1.3 KB)."),
    pinnedStats: STATS,
    verdict: "mismatch",
    detailIncludes: ["restored 2 files", "holds 3 files, 5 directories (1257 bytes, which kopia prints as 1.3 KB)"],
  },
  {
    name: "a different directory count is a mismatch",
    moverStatus: done("Restored 3 files, 4 directories and 2 symbolic links (1.3 KB)."),
    pinnedStats: STATS,
    verdict: "mismatch",
  },
  {
    name: "a size text kopia would not print for the total is a mismatch",
    moverStatus: done("Restored 3 files, 5 directories and 2 symbolic links (1.2 KB)."),
    pinnedStats: STATS,
    verdict: "mismatch",
  },
  {
    name: "an exact small size must match to the byte",
    moverStatus: done("Restored 1 files, 1 directories and 0 symbolic links (500 B)."),
    pinnedStats: '{"fileCount":1,"dirCount":1,"totalSize":505}',
    verdict: "mismatch",
  },
  {
    name: "a symlink count is compared when the annotation has one",
    moverStatus: done(LINE),
    pinnedStats: '{"fileCount":3,"dirCount":5,"totalSize":1257,"symlinkCount":1}',
    verdict: "mismatch",
    detailIncludes: ["and 1 symbolic links"],
  },
  {
    name: "skipped files are a mismatch that says they were skipped",
    moverStatus: done("Restored 1 files, 5 directories and 2 symbolic links (1.3 KB), skipped 2 (7 B)."),
    pinnedStats: STATS,
    verdict: "mismatch",
    detailIncludes: ["skipped 2 files"],
  },
  {
    name: "No eligible snapshots is empty",
    moverStatus: done("No eligible snapshots found\nNo snapshots found for app-backup@ns:/data\n=== No data will be restored ==="),
    pinnedStats: STATS,
    verdict: "empty",
    detailIncludes: ["handed over empty", "snapshot k1"],
  },
  {
    name: "a Failed result is failed, with the last error line",
    moverStatus: done("ERROR: Failed to restore snapshot: k1\nsomething else", "Failed"),
    pinnedStats: STATS,
    verdict: "failed",
    detailIncludes: ["ERROR: Failed to restore snapshot: k1"],
  },
  { name: "a Failed result without logs is failed", moverStatus: { result: "Failed" }, pinnedStats: STATS, verdict: "failed" },
  {
    name: "success without the Restored line is unverified and names MOVER_LOG_DEBUG",
    moverStatus: done("INFO: Snapshot restore completed successfully"),
    pinnedStats: STATS,
    verdict: "unverified",
    detailIncludes: ["MOVER_LOG_DEBUG=true"],
  },
  { name: "success without any logs is unverified", moverStatus: { result: "Successful" }, pinnedStats: STATS, verdict: "unverified" },
  {
    name: "a malformed stats annotation is unverified with the reason",
    moverStatus: done(LINE),
    pinnedStats: "not json",
    verdict: "unverified",
    detailIncludes: ["volsync.backup/restore-snapshot-stats", "it is not JSON"],
  },
  { name: "a missing stats annotation is unverified", moverStatus: done(LINE), verdict: "unverified", detailIncludes: ["it is missing"] },
  { name: "a malformed stats annotation does not hide an empty restore", moverStatus: done("No eligible snapshots found"), pinnedStats: "{", verdict: "empty" },
  { name: "a status that is not an object is not finished", moverStatus: "Successful", pinnedStats: STATS, verdict: "not finished" },
];

describe("verifyRestore", () => {
  for (const row of verdicts) {
    it(row.name, () => {
      const outcome = verifyRestore({ snapshotId: "k1", pinnedStats: row.pinnedStats, moverStatus: row.moverStatus });
      if (row.verdict === "not finished") {
        assert.deepEqual(outcome, { finished: false });
        return;
      }
      assert.equal(outcome.finished, true);
      if (!outcome.finished) return;
      assert.equal(outcome.verdict, row.verdict, outcome.detail);
      assert.match(outcome.detail, /^[A-Z].*\.$/, "one sentence");
      for (const fragment of row.detailIncludes ?? [])
        assert.ok(outcome.detail.includes(fragment), `${JSON.stringify(outcome.detail)} lacks ${JSON.stringify(fragment)}`);
    });
  }
});
