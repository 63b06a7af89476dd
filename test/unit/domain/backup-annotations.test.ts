import { test } from "node:test";
import assert from "node:assert/strict";
import { readBackupAnnotations } from "../../../webhook/domain/backup-annotations.ts";

const SCHEDULE = "volsync.backup/schedule";
const AS_OF = "volsync.backup/restore-as-of";
const SKIP = "volsync.backup/skip-restore";
const REASON = "volsync.backup/skip-restore-reason";

test("readBackupAnnotations reads no annotations as no preferences and no problems", () => {
  const cases: Array<Record<string, string> | undefined> = [undefined, {}, { "argocd.argoproj.io/tracking-id": "media:/PersistentVolumeClaim:media/app-data" }];
  for (const annotations of cases) {
    assert.deepEqual(readBackupAnnotations(annotations), { skipRestore: { requested: false }, blockingProblems: [], warnings: [] });
  }
});

test("readBackupAnnotations passes a schedule override through for the schedule resolver to check", () => {
  assert.equal(readBackupAnnotations({ [SCHEDULE]: "15 3 * * *" }).scheduleOverride, "15 3 * * *");
  assert.equal(readBackupAnnotations({ [SCHEDULE]: "not a cron" }).scheduleOverride, "not a cron");
});

/** `ms` plus `subMs` nanoseconds: the restore point is compared to the nanosecond. */
const validTimes: Array<{ text: string; ms: number; subMs?: bigint; kept: string }> = [
  { text: "2026-11-20T00:00:00Z", ms: Date.UTC(2026, 10, 20), kept: "2026-11-20T00:00:00Z" },
  { text: "2026-11-20T00:00:00.5Z", ms: Date.UTC(2026, 10, 20, 0, 0, 0, 500), kept: "2026-11-20T00:00:00.5Z" },
  { text: "2026-11-20T00:00:00.123456789Z", ms: Date.UTC(2026, 10, 20, 0, 0, 0, 123), subMs: 456_789n, kept: "2026-11-20T00:00:00.123456789Z" },
  { text: "2026-11-20T05:30:00+05:30", ms: Date.UTC(2026, 10, 20), kept: "2026-11-20T05:30:00+05:30" },
  { text: "2026-11-19T19:00:00-05:00", ms: Date.UTC(2026, 10, 20), kept: "2026-11-19T19:00:00-05:00" },
  { text: "2024-02-29T23:59:59Z", ms: Date.UTC(2024, 1, 29, 23, 59, 59), kept: "2024-02-29T23:59:59Z" },
  { text: "  2026-11-20T00:00:00Z\n", ms: Date.UTC(2026, 10, 20), kept: "2026-11-20T00:00:00Z" },
];
for (const row of validTimes) {
  test(`readBackupAnnotations reads restore-as-of ${JSON.stringify(row.text)}`, () => {
    const read = readBackupAnnotations({ [AS_OF]: row.text });
    assert.equal(read.restoreAsOfNs, BigInt(row.ms) * 1_000_000n + (row.subMs ?? 0n));
    assert.equal(read.restoreAsOf, row.kept);
    assert.deepEqual(read.blockingProblems, []);
  });
}

const invalidTimes = [
  "2026-11-20",
  "2026-11-20 00:00:00Z",
  "2026-11-20T00:00:00",
  "yesterday",
  "1763596800",
  "",
  "2026-13-01T00:00:00Z",
  "2026-02-30T00:00:00Z",
  "2025-02-29T00:00:00Z",
  "2026-04-31T00:00:00Z",
  "2026-11-20T24:00:00Z",
  "2026-11-20T23:60:00Z",
  "2026-11-20T00:00:00+25:00",
];
for (const text of invalidTimes) {
  test(`readBackupAnnotations blocks on restore-as-of ${JSON.stringify(text)}, which is not an RFC 3339 time`, () => {
    const read = readBackupAnnotations({ [AS_OF]: text });
    assert.equal(read.restoreAsOfNs, undefined);
    assert.equal(read.restoreAsOf, undefined);
    assert.equal(read.blockingProblems.length, 1);
    assert.match(read.blockingProblems[0]!, /restore-as-of/);
    assert.match(read.blockingProblems[0]!, /RFC 3339/);
  });
}

const skips: Array<{ name: string; annotations: Record<string, string>; skip: unknown; warnings: number }> = [
  {
    name: "skip with a reason is a valid skip",
    annotations: { [SKIP]: "true", [REASON]: "data migrated to new schema" },
    skip: { requested: true, reason: "data migrated to new schema" },
    warnings: 0,
  },
  { name: "the reason is trimmed", annotations: { [SKIP]: "true", [REASON]: "  migrated \n" }, skip: { requested: true, reason: "migrated" }, warnings: 0 },
  { name: "skip without a reason is requested with no reason", annotations: { [SKIP]: "true" }, skip: { requested: true, reason: undefined }, warnings: 0 },
  { name: "a blank reason counts as no reason", annotations: { [SKIP]: "true", [REASON]: "   " }, skip: { requested: true, reason: undefined }, warnings: 0 },
  { name: "skip false is no skip", annotations: { [SKIP]: "false", [REASON]: "whatever" }, skip: { requested: false }, warnings: 0 },
  { name: "a reason alone is no skip", annotations: { [REASON]: "just because" }, skip: { requested: false }, warnings: 0 },
  { name: "True (capitalised) is ignored with a warning", annotations: { [SKIP]: "True", [REASON]: "x" }, skip: { requested: false }, warnings: 1 },
  { name: "yes is ignored with a warning", annotations: { [SKIP]: "yes" }, skip: { requested: false }, warnings: 1 },
  { name: "an empty value is ignored with a warning", annotations: { [SKIP]: "" }, skip: { requested: false }, warnings: 1 },
];
for (const row of skips) {
  test(`readBackupAnnotations: ${row.name}`, () => {
    const read = readBackupAnnotations(row.annotations);
    assert.deepEqual(read.skipRestore, row.skip);
    assert.equal(read.warnings.length, row.warnings);
    assert.deepEqual(read.blockingProblems, []);
    if (row.warnings > 0) assert.match(read.warnings[0]!, /skip-restore/);
  });
}

test("readBackupAnnotations reports every annotation at once", () => {
  const read = readBackupAnnotations({ [SCHEDULE]: "H 3 * * *", [AS_OF]: "soon", [SKIP]: "maybe" });
  assert.equal(read.scheduleOverride, "H 3 * * *");
  assert.equal(read.blockingProblems.length, 1);
  assert.equal(read.warnings.length, 1);
});
