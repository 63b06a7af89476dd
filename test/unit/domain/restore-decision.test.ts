import { test } from "node:test";
import assert from "node:assert/strict";
import { decideRestore, newestCompleteSnapshot } from "../../../webhook/domain/restore-decision.ts";
import { createUnconfiguredCatalog, type CatalogLookup, type SnapshotRecord } from "../../../webhook/domain/snapshot-catalog.ts";

const IDENTITY = "app-data-backup@media:/data";

function snapshot(id: string, startTime: string, incomplete = false): SnapshotRecord {
  return { id, startTime, endTime: startTime, startTimeMs: Date.parse(startTime), incomplete };
}
const readable = (...snapshots: SnapshotRecord[]): CatalogLookup => ({ readable: true, snapshots, refreshedAtMs: Date.UTC(2026, 10, 21) });

const nov18 = snapshot("k18", "2026-11-18T02:00:00Z");
const nov19 = snapshot("k19", "2026-11-19T02:00:00Z");
const nov20 = snapshot("k20", "2026-11-20T00:00:00Z");
const nov21 = snapshot("k21", "2026-11-21T02:00:00Z");
const nov22Incomplete = snapshot("k22", "2026-11-22T02:00:00Z", true);

const cases: Array<{ name: string; lookup: CatalogLookup; asOf?: string; answer: "restore" | "fresh" | "unknown"; snapshotId?: string; complete?: number }> = [
  { name: "an unreadable repository is unknown, never fresh", lookup: { readable: false, reason: "wrong password" }, answer: "unknown" },
  { name: "an unreadable repository is unknown even with restore-as-of", lookup: { readable: false, reason: "stale" }, asOf: "2026-11-20T00:00:00Z", answer: "unknown" },
  { name: "a readable repository without snapshots is fresh", lookup: readable(), answer: "fresh" },
  { name: "only incomplete snapshots is fresh (nothing restorable)", lookup: readable(nov22Incomplete), answer: "fresh" },
  { name: "one complete snapshot is restored", lookup: readable(nov19), answer: "restore", snapshotId: "k19", complete: 1 },
  { name: "the newest complete snapshot is chosen whatever the order", lookup: readable(nov19, nov21, nov18), answer: "restore", snapshotId: "k21", complete: 3 },
  { name: "a newer incomplete snapshot is ignored", lookup: readable(nov19, nov22Incomplete, nov21), answer: "restore", snapshotId: "k21", complete: 2 },
  { name: "restore-as-of picks the newest at or before the time", lookup: readable(nov18, nov19, nov21), asOf: "2026-11-20T00:00:00Z", answer: "restore", snapshotId: "k19", complete: 2 },
  { name: "a snapshot exactly at restore-as-of is eligible", lookup: readable(nov19, nov20, nov21), asOf: "2026-11-20T00:00:00Z", answer: "restore", snapshotId: "k20", complete: 2 },
  { name: "a snapshot one millisecond after restore-as-of is not", lookup: readable(nov19, nov20), asOf: "2026-11-19T23:59:59.999Z", answer: "restore", snapshotId: "k19", complete: 1 },
  { name: "snapshots only after restore-as-of is unknown, not fresh", lookup: readable(nov21), asOf: "2026-11-20T00:00:00Z", answer: "unknown" },
  { name: "restore-as-of with no snapshots at all is fresh", lookup: readable(), asOf: "2026-11-20T00:00:00Z", answer: "fresh" },
  { name: "restore-as-of with only incomplete snapshots before it is fresh", lookup: readable(snapshot("old", "2026-11-01T00:00:00Z", true)), asOf: "2026-11-20T00:00:00Z", answer: "fresh" },
  { name: "an incomplete snapshot before restore-as-of is never chosen", lookup: readable(snapshot("inc", "2026-11-19T12:00:00Z", true), nov18), asOf: "2026-11-20T00:00:00Z", answer: "restore", snapshotId: "k18", complete: 1 },
];

for (const row of cases) {
  test(`decideRestore: ${row.name}`, () => {
    const decision = decideRestore(IDENTITY, row.lookup, row.asOf === undefined ? undefined : Date.parse(row.asOf));
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
  const decision = decideRestore(IDENTITY, readable(nov21, snapshot("k23", "2026-11-23T02:00:00Z")), Date.parse("2026-11-20T00:00:00Z"));
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
  const at = (iso: string, incomplete = false) => ({ id: iso, startTime: iso, endTime: iso, startTimeMs: Date.parse(iso), incomplete });
  const snapshots = [at("2026-11-01T00:00:00Z"), at("2026-11-03T00:00:00Z", true), at("2026-11-02T00:00:00Z"), at("2026-11-04T00:00:00Z")];
  assert.equal(newestCompleteSnapshot(snapshots)?.id, "2026-11-04T00:00:00Z");
  assert.equal(newestCompleteSnapshot(snapshots, Date.parse("2026-11-03T12:00:00Z"))?.id, "2026-11-02T00:00:00Z");
  assert.equal(newestCompleteSnapshot(snapshots, Date.parse("2026-10-01T00:00:00Z")), undefined);
  assert.equal(newestCompleteSnapshot([at("2026-11-05T00:00:00Z", true)]), undefined);
});
