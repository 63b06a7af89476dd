import { test } from "node:test";
import assert from "node:assert/strict";
import { DEFAULT_POLICY } from "../../../webhook/domain/policy.ts";
import { snapshotRecord, type CatalogLookup, type SnapshotRecord } from "../../../webhook/domain/snapshot-catalog.ts";
import { auditProtectedPvcs, type AuditInventory } from "../../../webhook/domain/backup-audit.ts";
import { scheduleIntervalMs } from "../../../webhook/domain/backup-schedule.ts";

const nowMs = Date.parse("2026-11-25T12:30:00Z");
const hourMs = 3_600_000;

function snapshot(startTimeMs: number, incomplete = false): SnapshotRecord {
  const startTime = new Date(startTimeMs).toISOString();
  return snapshotRecord({ id: `k${startTimeMs}`, startTime, endTime: startTime, incomplete })!;
}

function inventory(options: { objects?: ("secret" | "rd" | "rs")[]; boundAtMs?: number; label?: string; namespace?: string }): AuditInventory {
  const namespace = options.namespace ?? "apps";
  const objects = options.objects ?? ["secret", "rd", "rs"];
  return {
    pvcs: [{ namespace, name: "data", labels: { backup: options.label ?? "hourly" }, phase: "Bound" }],
    secrets: objects.includes("secret") ? [{ namespace, name: "volsync-data" }] : [],
    replicationDestinations: objects.includes("rd")
      ? [
          {
            namespace,
            name: "data-backup",
            ...(options.boundAtMs === undefined ? {} : { annotations: { "volsync.backup/bound-observed-at": new Date(options.boundAtMs).toISOString() } }),
          },
        ]
      : [],
    replicationSources: objects.includes("rs") ? [{ namespace, name: "data-backup", lastSyncTime: "2026-11-25T12:00:05Z" }] : [],
  };
}

const readable = (snapshots: SnapshotRecord[]) => (): CatalogLookup => ({ readable: true, snapshots, refreshedAtMs: nowMs });
const audit = (inv: AuditInventory, lookup: () => CatalogLookup) => auditProtectedPvcs(inv, DEFAULT_POLICY, lookup, nowMs);

test("the interval of an hourly schedule is an hour and of a daily one a day", () => {
  assert.equal(scheduleIntervalMs("0 * * * *", nowMs), hourMs);
  assert.equal(scheduleIntervalMs("0 2 * * *", nowMs), 24 * hourMs);
});

const cases: { name: string; inventory: AuditInventory; lookup: () => CatalogLookup; verdict: string }[] = [
  {
    name: "ok with all objects and a snapshot within two intervals",
    inventory: inventory({}),
    lookup: readable([snapshot(nowMs - 90 * 60_000)]),
    verdict: "ok",
  },
  {
    name: "stale when the newest snapshot is older than two intervals",
    inventory: inventory({}),
    lookup: readable([snapshot(nowMs - 3 * hourMs)]),
    verdict: "stale",
  },
  {
    name: "stale ignores incomplete snapshots",
    inventory: inventory({}),
    lookup: readable([snapshot(nowMs - 3 * hourMs), snapshot(nowMs - 60_000, true)]),
    verdict: "stale",
  },
  {
    name: "no-backup-yet before the first backup is due",
    inventory: inventory({ objects: ["secret", "rd"], boundAtMs: nowMs - hourMs }),
    lookup: readable([]),
    verdict: "no-backup-yet",
  },
  {
    name: "missing-objects when the RS is due and absent",
    inventory: inventory({ objects: ["secret", "rd"], boundAtMs: nowMs - 3 * hourMs }),
    lookup: readable([]),
    verdict: "missing-objects",
  },
  {
    name: "stale when the first backup is overdue by two intervals",
    inventory: inventory({ boundAtMs: nowMs - 5 * hourMs }),
    lookup: readable([]),
    verdict: "stale",
  },
  {
    name: "missing-objects without the Secret",
    inventory: inventory({ objects: ["rd", "rs"] }),
    lookup: readable([snapshot(nowMs - 60_000)]),
    verdict: "missing-objects",
  },
  {
    name: "unknown when the repository is unreadable",
    inventory: inventory({}),
    lookup: () => ({ readable: false, reason: "wrong password" }),
    verdict: "unknown",
  },
];

for (const c of cases) {
  test(`audit verdict: ${c.name}`, () => {
    const report = audit(c.inventory, c.lookup);
    assert.equal(report.rows.length, 1);
    assert.equal(report.rows[0]!.verdict, c.verdict, JSON.stringify(report.rows[0]));
  });
}

test("the audit leaves out PVCs that are not protected: unknown tiers and excluded namespaces", () => {
  assert.deepEqual(audit(inventory({ label: "Hourly" }), readable([])).rows, []);
  assert.deepEqual(audit(inventory({ namespace: "kube-system" }), readable([])).rows, []);
});

test("the audit reports the repository problem once and the identity it looked up", () => {
  const report = audit(inventory({}), () => ({ readable: false, reason: "wrong password" }));
  assert.equal(report.repositoryReadable, false);
  assert.equal(report.repositoryProblem, "wrong password");
  assert.equal(report.rows[0]!.identity, "data-backup@apps:/data");
  assert.equal(report.rows[0]!.completeSnapshots, null);
});

function withRestoreAnnotations(annotations: Record<string, string>): AuditInventory {
  const base = inventory({});
  return { ...base, replicationDestinations: [{ namespace: "apps", name: "data-backup", annotations }] };
}

const restoreCases: { name: string; annotations: Record<string, string>; verdict: string; restoreVerdict: string | null; detail: RegExp | null }[] = [
  {
    name: "a verified restore keeps the row ok and says restored and verified",
    annotations: {
      "volsync.backup/restore-snapshot-id": "k7",
      "volsync.backup/restore-verdict": "verified",
      "volsync.backup/restore-verdict-detail": "The mover restored 3 files.",
    },
    verdict: "ok",
    restoreVerdict: "verified",
    detail: /^restored and verified from snapshot k7$/,
  },
  {
    name: "a mismatched restore makes the row restore-failed with the reconciler's detail",
    annotations: {
      "volsync.backup/restore-snapshot-id": "k7",
      "volsync.backup/restore-verdict": "mismatch",
      "volsync.backup/restore-verdict-detail": "The mover restored 2 files, but snapshot k7 holds 3 files.",
    },
    verdict: "restore-failed",
    restoreVerdict: "mismatch",
    detail: /^restore mismatch: The mover restored 2 files, but snapshot k7 holds 3 files\.$/,
  },
  {
    name: "an empty restore makes the row restore-failed",
    annotations: { "volsync.backup/restore-snapshot-id": "k7", "volsync.backup/restore-verdict": "empty", "volsync.backup/restore-verdict-detail": "Nothing." },
    verdict: "restore-failed",
    restoreVerdict: "empty",
    detail: /^restore empty: Nothing\.$/,
  },
  {
    name: "a failed restore makes the row restore-failed",
    annotations: { "volsync.backup/restore-snapshot-id": "k7", "volsync.backup/restore-verdict": "failed", "volsync.backup/restore-verdict-detail": "Failed." },
    verdict: "restore-failed",
    restoreVerdict: "failed",
    detail: /^restore failed: Failed\.$/,
  },
  {
    name: "an unverified restore keeps the row ok and says it was not verified",
    annotations: {
      "volsync.backup/restore-snapshot-id": "k7",
      "volsync.backup/restore-verdict": "unverified",
      "volsync.backup/restore-verdict-detail": "No line.",
    },
    verdict: "ok",
    restoreVerdict: "unverified",
    detail: /^restored from snapshot k7 but not verified: No line\.$/,
  },
  {
    name: "a restore still running is pending",
    annotations: { "volsync.backup/restore-snapshot-id": "k7" },
    verdict: "ok",
    restoreVerdict: null,
    detail: /^restoring snapshot k7; the verdict follows/,
  },
  {
    name: "a verdict this version does not know is not guessed at",
    annotations: { "volsync.backup/restore-snapshot-id": "k7", "volsync.backup/restore-verdict": "partial" },
    verdict: "ok",
    restoreVerdict: null,
    detail: /^restoring snapshot k7/,
  },
];

for (const c of restoreCases) {
  test(`audit restore: ${c.name}`, () => {
    const row = audit(withRestoreAnnotations(c.annotations), readable([snapshot(nowMs - 60_000)])).rows[0]!;
    assert.equal(row.verdict, c.verdict);
    assert.equal(row.restore?.snapshot, "k7");
    assert.equal(row.restore?.verdict, c.restoreVerdict);
    assert.match(row.detail ?? "", c.detail!);
  });
}

test("audit restore: a row without a restore says nothing about one", () => {
  const row = audit(inventory({}), readable([snapshot(nowMs - 60_000)])).rows[0]!;
  assert.equal(row.restore, null);
  assert.equal(row.detail, null);
});

test("audit restore: a failed restore outranks a stale backup and keeps both sentences", () => {
  const inv = withRestoreAnnotations({
    "volsync.backup/restore-snapshot-id": "k7",
    "volsync.backup/restore-verdict": "empty",
    "volsync.backup/restore-verdict-detail": "Nothing.",
  });
  const row = audit(inv, readable([snapshot(nowMs - 3 * hourMs)])).rows[0]!;
  assert.equal(row.verdict, "restore-failed");
  assert.match(row.detail ?? "", /older than twice the schedule interval; restore empty: Nothing\.$/);
});
