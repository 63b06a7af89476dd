import { test } from "node:test";
import assert from "node:assert/strict";
import { backupIdentity } from "../../../webhook/domain/kopia-identity.ts";
import { decidePvcRestore, decideRestore, newestCompleteSnapshot, pinRestorePoint, type RestorePoint } from "../../../webhook/domain/restore-decision.ts";
import { parseRfc3339Ns } from "../../../webhook/domain/rfc3339-time.ts";
import { createUnconfiguredCatalog, snapshotRecord, type CatalogLookup, type SnapshotRecord } from "../../../webhook/domain/snapshot-catalog.ts";

const IDENTITY = "app-data-backup@media:/data";

function snapshot(id: string, startTime: string, incomplete = false, endTime = startTime): SnapshotRecord {
  return snapshotRecord({ id, startTime, endTime, incomplete })!;
}
const readable = (...snapshots: SnapshotRecord[]): CatalogLookup => ({ readable: true, snapshots, refreshedAtMs: Date.UTC(2026, 10, 21) });

const nov18 = snapshot("k18", "2026-11-18T02:00:00Z");
const nov19 = snapshot("k19", "2026-11-19T02:00:00Z");
const nov20 = snapshot("k20", "2026-11-20T00:00:00Z");
const nov21 = snapshot("k21", "2026-11-21T02:00:00Z");
const nov22Incomplete = snapshot("k22", "2026-11-22T02:00:00Z", true);

const cases: Array<{ name: string; lookup: CatalogLookup; asOf?: string; answer: "restore" | "fresh" | "unknown"; snapshotId?: string; complete?: number }> = [
  { name: "an unreadable repository is unknown, never fresh", lookup: { readable: false, reason: "wrong password" }, answer: "unknown" },
  {
    name: "an unreadable repository is unknown even with restore-as-of",
    lookup: { readable: false, reason: "stale" },
    asOf: "2026-11-20T00:00:00Z",
    answer: "unknown",
  },
  { name: "a readable repository without snapshots is fresh", lookup: readable(), answer: "fresh" },
  { name: "only incomplete snapshots is fresh (nothing restorable)", lookup: readable(nov22Incomplete), answer: "fresh" },
  { name: "one complete snapshot is restored", lookup: readable(nov19), answer: "restore", snapshotId: "k19", complete: 1 },
  {
    name: "the newest complete snapshot is chosen whatever the order",
    lookup: readable(nov19, nov21, nov18),
    answer: "restore",
    snapshotId: "k21",
    complete: 3,
  },
  { name: "a newer incomplete snapshot is ignored", lookup: readable(nov19, nov22Incomplete, nov21), answer: "restore", snapshotId: "k21", complete: 2 },
  {
    name: "restore-as-of picks the newest at or before the time",
    lookup: readable(nov18, nov19, nov21),
    asOf: "2026-11-20T00:00:00Z",
    answer: "restore",
    snapshotId: "k19",
    complete: 2,
  },
  {
    name: "a snapshot exactly at restore-as-of is eligible",
    lookup: readable(nov19, nov20, nov21),
    asOf: "2026-11-20T00:00:00Z",
    answer: "restore",
    snapshotId: "k20",
    complete: 2,
  },
  {
    name: "a snapshot one millisecond after restore-as-of is not",
    lookup: readable(nov19, nov20),
    asOf: "2026-11-19T23:59:59.999Z",
    answer: "restore",
    snapshotId: "k19",
    complete: 1,
  },
  { name: "snapshots only after restore-as-of is unknown, not fresh", lookup: readable(nov21), asOf: "2026-11-20T00:00:00Z", answer: "unknown" },
  { name: "restore-as-of with no snapshots at all is fresh", lookup: readable(), asOf: "2026-11-20T00:00:00Z", answer: "fresh" },
  {
    name: "restore-as-of with only incomplete snapshots before it is fresh",
    lookup: readable(snapshot("old", "2026-11-01T00:00:00Z", true)),
    asOf: "2026-11-20T00:00:00Z",
    answer: "fresh",
  },
  {
    name: "an incomplete snapshot before restore-as-of is never chosen",
    lookup: readable(snapshot("inc", "2026-11-19T12:00:00Z", true), nov18),
    asOf: "2026-11-20T00:00:00Z",
    answer: "restore",
    snapshotId: "k18",
    complete: 1,
  },
];

for (const row of cases) {
  test(`decideRestore: ${row.name}`, () => {
    const decision = decideRestore(IDENTITY, row.lookup, row.asOf === undefined ? undefined : parseRfc3339Ns(row.asOf));
    assert.equal(decision.answer, row.answer);
    assert.equal(decision.identity, IDENTITY);
    if (decision.answer === "restore") {
      assert.equal(decision.snapshot.id, row.snapshotId);
      assert.equal(decision.completeSnapshots, row.complete);
    }
    if (decision.answer === "unknown") assert.ok(decision.reason.length > 0);
  });
}

test("decideRestore carries the catalog's reason into unknown", () => {
  const decision = decideRestore(IDENTITY, { readable: false, reason: "cannot read kopia.repository.f: EACCES" });
  assert.deepEqual(decision, { answer: "unknown", identity: IDENTITY, reason: "cannot read kopia.repository.f: EACCES" });
});

test("decideRestore explains an unknown caused by restore-as-of", () => {
  const decision = decideRestore(IDENTITY, readable(nov21, snapshot("k23", "2026-11-23T02:00:00Z")), parseRfc3339Ns("2026-11-20T00:00:00Z"));
  assert.equal(decision.answer, "unknown");
  assert.ok(decision.answer === "unknown" && /2 complete snapshot\(s\) for app-data-backup@media:\/data/.test(decision.reason));
  assert.ok(decision.answer === "unknown" && /restore-as-of/.test(decision.reason));
});

test("the unconfigured catalog makes every decision unknown, saying no repository is configured", () => {
  const catalog = createUnconfiguredCatalog();
  const lookup = catalog.lookup(IDENTITY, Date.now());
  assert.equal(lookup.readable, false);
  const decision = decideRestore(IDENTITY, lookup);
  assert.equal(decision.answer, "unknown");
  assert.ok(decision.answer === "unknown" && /no Kopia repository is configured/.test(decision.reason));
});

test("newestCompleteSnapshot skips incomplete snapshots and those after the bound", () => {
  const at = (iso: string, incomplete = false) => snapshot(iso, iso, incomplete);
  const snapshots = [at("2026-11-01T00:00:00Z"), at("2026-11-03T00:00:00Z", true), at("2026-11-02T00:00:00Z"), at("2026-11-04T00:00:00Z")];
  assert.equal(newestCompleteSnapshot(snapshots)?.id, "2026-11-04T00:00:00Z");
  assert.equal(newestCompleteSnapshot(snapshots, parseRfc3339Ns("2026-11-03T12:00:00Z"))?.id, "2026-11-02T00:00:00Z");
  assert.equal(newestCompleteSnapshot(snapshots, parseRfc3339Ns("2026-10-01T00:00:00Z")), undefined);
  assert.equal(newestCompleteSnapshot([at("2026-11-05T00:00:00Z", true)]), undefined);
});

// VolSync's mover, as the README's "The restore point is pinned" describes it, written here apart from the
// implementation: kopia's order, keep start-time TEXT <= restoreAsOf text, newest first, skip
// `previous`, take one (complete or not).
function moverPick(snapshots: readonly SnapshotRecord[], point: Partial<RestorePoint> & { previous: number }): string | undefined {
  const listed = [...snapshots].sort((a, b) => (a.startTimeNs === b.startTimeNs ? Number(a.endTimeNs - b.endTimeNs) : Number(a.startTimeNs - b.startTimeNs)));
  const asOf = point.restoreAsOf;
  const eligible = (asOf === undefined ? listed : listed.filter((s) => s.startTime <= asOf)).reverse();
  return eligible[point.previous]?.id;
}

// The snapshots and restore-as-of texts measured with the real mover (README, "The restore point is pinned").
const T1 = snapshot("T1", "2026-11-19T22:30:00Z");
const T2 = snapshot("T2", "2026-11-19T23:30:00.25Z");
const T3 = snapshot("T3", "2026-11-20T00:00:00.5Z");
const T4 = snapshot("T4", "2026-11-20T01:30:00Z");
const T5 = snapshot("T5", "2026-11-20T10:00:00Z");
const measured: Array<{ asOf: string; expected: string; moverTookRaw: string | undefined }> = [
  { asOf: "2026-11-20T01:00:00Z", expected: "T3", moverTookRaw: "T3" },
  { asOf: "2026-11-20T00:00:00Z", expected: "T2", moverTookRaw: "T3" },
  { asOf: "2026-11-20T02:00:00+02:00", expected: "T2", moverTookRaw: "T4" },
  { asOf: "2026-11-19T19:00:00-05:00", expected: "T2", moverTookRaw: undefined },
  { asOf: "2026-11-20t00:00:00z", expected: "T2", moverTookRaw: "T5" },
  { asOf: "2026-11-19T22:30:00.000Z", expected: "T1", moverTookRaw: undefined },
];
for (const row of measured) {
  test(`restore-as-of ${row.asOf} is compared as a time and the pinned RD makes the mover take ${row.expected}`, () => {
    const lookup = readable(T1, T2, T3, T4, T5);
    const decision = decideRestore(IDENTITY, lookup, parseRfc3339Ns(row.asOf));
    assert.equal(decision.answer, "restore");
    if (decision.answer !== "restore") return;
    assert.equal(decision.snapshot.id, row.expected);
    assert.deepEqual(decision.restorePoint, { restoreAsOf: decision.snapshot.startTime, previous: 0 });
    assert.equal(moverPick(lookup.readable ? lookup.snapshots : [], decision.restorePoint), row.expected);
    // What the mover did with the annotation passed through raw, as recorded: the reason to pin.
    assert.equal(moverPick([T1, T2, T3, T4, T5], { restoreAsOf: row.asOf, previous: 0 }), row.moverTookRaw);
  });
}

test("the pin skips a newer incomplete snapshot the mover would otherwise restore", () => {
  const killed = snapshot("killed", "2026-11-21T03:00:00Z", true);
  const lookup = readable(nov19, nov21, killed);
  const decision = decideRestore(IDENTITY, lookup);
  assert.ok(decision.answer === "restore");
  assert.equal(decision.snapshot.id, "k21");
  assert.deepEqual(decision.restorePoint, { restoreAsOf: "2026-11-21T02:00:00Z", previous: 0 });
  // Unpinned, the mover takes the newest listed snapshot: the killed one.
  assert.equal(moverPick([nov19, nov21, killed], { previous: 0 }), "killed");
  assert.equal(moverPick([nov19, nov21, killed], decision.restorePoint), "k21");
});

test("a later snapshot within the chosen one's whole second is skipped with previous", () => {
  const whole = snapshot("whole", "2026-11-20T10:00:00Z", false, "2026-11-20T10:05:00Z");
  const later = snapshot("later", "2026-11-20T10:00:00.5Z", true, "2026-11-20T10:01:00Z");
  const lookup = readable(nov19, whole, later);
  const decision = decideRestore(IDENTITY, lookup);
  assert.ok(decision.answer === "restore");
  assert.equal(decision.snapshot.id, "whole");
  assert.deepEqual(decision.restorePoint, { restoreAsOf: "2026-11-20T10:00:00Z", previous: 1 });
  assert.equal(moverPick([nov19, whole, later], { ...decision.restorePoint, previous: 0 }), "later");
  assert.equal(moverPick([nov19, whole, later], decision.restorePoint), "whole");
});

test("a complete snapshot after restore-as-of but within the chosen whole second is skipped too", () => {
  const whole = snapshot("whole", "2026-11-20T10:00:00Z");
  const half = snapshot("half", "2026-11-20T10:00:00.5Z");
  const decision = decideRestore(IDENTITY, readable(whole, half), parseRfc3339Ns("2026-11-20T10:00:00.2Z"));
  assert.ok(decision.answer === "restore");
  assert.equal(decision.snapshot.id, "whole");
  assert.equal(moverPick([whole, half], decision.restorePoint), "whole");
});

test("two snapshots with the same start and end time cannot be pinned: unknown, never a guess", () => {
  const a = snapshot("a", "2026-11-20T10:00:00Z");
  const b = snapshot("b", "2026-11-20T10:00:00Z");
  assert.equal(pinRestorePoint([a, b], a).ok, false);
  const decision = decideRestore(IDENTITY, readable(a, b));
  assert.equal(decision.answer, "unknown");
  assert.match(decision.answer === "unknown" ? decision.reason : "", /cannot be told/);
});

const lookupOf =
  (byKey: Record<string, CatalogLookup>) =>
  (key: string): CatalogLookup =>
    byKey[key] ?? readable();

test("decidePvcRestore keeps VolSync's own name for a short PVC and restores from it", () => {
  const backup = backupIdentity("app-data-backup", "media");
  assert.equal(backup.written.key, "app-data-backup@media:/data");
  const result = decidePvcRestore(backup, lookupOf({ "app-data-backup@media:/data": readable(nov19) }), {});
  assert.equal(result.decision.answer, "restore");
  assert.deepEqual(result.source, { identity: backup.written, fields: "explicit" });
});

const ordinal = "data-kafka-broker-production-eu-west-1-cluster-abc-0-backup";
const shared = "data-kafka-broker-production-eu-west-1-cluster-abc@kafka:/data";

test("decidePvcRestore refuses to restore silently from a truncated identity other PVCs share", () => {
  const backup = backupIdentity(ordinal, "kafka");
  assert.equal(backup.automatic.key, shared);
  assert.notEqual(backup.written.key, shared);
  const result = decidePvcRestore(backup, lookupOf({ [shared]: readable(nov19) }), {});
  assert.equal(result.decision.answer, "unknown");
  if (result.decision.answer !== "unknown") return;
  assert.match(result.decision.reason, /data-kafka-broker-production-eu-west-1-cluster-abc@kafka:\/data holds 1 snapshot/);
  assert.match(result.decision.remedy ?? "", /volsync\.backup\/restore-from-identity: "data-kafka-broker-production-eu-west-1-cluster-abc@kafka:\/data"/);
  assert.match(result.decision.remedy ?? "", /skip-restore/);
});

test("decidePvcRestore answers fresh when neither the written nor the automatic identity holds anything", () => {
  const backup = backupIdentity(ordinal, "kafka");
  assert.equal(decidePvcRestore(backup, lookupOf({}), {}).decision.answer, "fresh");
  const unreadable = decidePvcRestore(backup, (key) => (key === shared ? { readable: false, reason: "EIO" } : readable()), {});
  assert.equal(unreadable.decision.answer, "unknown");
});

test("restore-from-identity restores a shared automatic identity through VolSync's own naming when the CRD refuses it as a value", () => {
  // 49 characters: `<name>-backup` cut to 50 ends in "-", which the CRD refuses as an explicit username.
  const pvc = "a".repeat(49);
  const backup = backupIdentity(`${pvc}-backup`, "media");
  assert.ok(backup.automatic.username.endsWith("-"));
  const result = decidePvcRestore(backup, lookupOf({ [backup.automatic.key]: readable(nov19) }), { restoreFromIdentity: backup.automatic.key });
  assert.equal(result.decision.answer, "restore");
  assert.deepEqual(result.source, { identity: backup.automatic, fields: "automatic" });
  assert.match(result.warnings.join(" "), /new backups are written under/);
});

test("restore-from-identity names a valid identity explicitly, and never one of another namespace", () => {
  const backup = backupIdentity(ordinal, "kafka");
  const granted = decidePvcRestore(backup, lookupOf({ [shared]: readable(nov19) }), { restoreFromIdentity: shared });
  assert.equal(granted.decision.answer, "restore");
  assert.equal(granted.source?.fields, "explicit");
  assert.equal(granted.source?.identity.key, shared);
  const foreign = decidePvcRestore(backup, lookupOf({ "db-backup@finance:/data": readable(nov19) }), { restoreFromIdentity: "db-backup@finance:/data" });
  assert.equal(foreign.decision.answer, "unknown");
  assert.match(foreign.decision.answer === "unknown" ? foreign.decision.reason : "", /own namespace/);
  const empty = decidePvcRestore(backup, lookupOf({}), { restoreFromIdentity: shared });
  assert.equal(empty.decision.answer, "unknown");
  const malformed = decidePvcRestore(backup, lookupOf({}), { restoreFromIdentity: "not an identity" });
  assert.equal(malformed.decision.answer, "unknown");
});

test("restore-from-identity gives way to the PVC's own backups once it has them", () => {
  const backup = backupIdentity(ordinal, "kafka");
  const result = decidePvcRestore(backup, lookupOf({ [backup.written.key]: readable(nov21), [shared]: readable(nov19) }), { restoreFromIdentity: shared });
  assert.equal(result.decision.answer, "restore");
  assert.equal(result.decision.answer === "restore" ? result.decision.snapshot.id : "", "k21");
  assert.equal(result.source?.identity.key, backup.written.key);
  assert.match(result.warnings.join(" "), /is ignored/);
});
