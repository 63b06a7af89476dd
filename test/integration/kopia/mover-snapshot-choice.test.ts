// The snapshot VolSync's mover restores is the snapshot pvc-guardian's decision chose. Real
// repositories written by kopia v0.22.3 (the mover's version) under the identity our
// ReplicationSource names; planPvc decides from a real catalog of that repository; the mover
// oracle (written from the contract, not from webhook/) runs the real `kopia snapshot list
// <username>@<hostname>:/data --json` with the Job environment of the generated
// ReplicationDestination and applies the mover's text rule. Each family also shows that the
// annotation passed through raw would make the mover take another snapshot, or none.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createAssumedCatalog, planPvc, type PlanEntry } from "../../../webhook/cli/plan.ts";
import { DEFAULT_POLICY } from "../../../webhook/domain/policy.ts";
import type { PersistentVolumeClaim } from "../../../webhook/domain/pvc.ts";
import { ANNOTATION_RESTORE_AS_OF, ANNOTATION_RESTORE_SNAPSHOT_ID } from "../../../webhook/domain/wire-names.ts";
import { type KopiaRepository, createKopiaRepository, findKopiaBinary, kopiaSkip, loadCatalogOnce } from "../../harness/kopia.ts";
import {
  type VolSyncObject,
  automaticUsername,
  chooseMoverSnapshot,
  chosenSnapshotId,
  listSourceAsMover,
  moverJobEnvironment,
  moverRestoreSource,
} from "../../harness/volsync-mover-oracle.ts";
import { eventually } from "../../support/eventually.ts";
import { pvcObject } from "../../support/pvc-object.ts";

const namespace = "media";

type ListedEntry = { id: string; startTime: string; endTime: string; incomplete?: string };

function pvcNamed(name: string, restoreAsOf?: string): PersistentVolumeClaim {
  return pvcObject(namespace, name, { backup: "hourly" }, restoreAsOf === undefined ? undefined : { [ANNOTATION_RESTORE_AS_OF]: restoreAsOf });
}

function generatedOfKind(entry: PlanEntry, kind: string): VolSyncObject & { metadata: { annotations?: Record<string, string> } } {
  const found = entry.generated.find((object) => (object as { kind?: string }).kind === kind);
  assert.ok(found, `${entry.pvc}: planPvc generated no ${kind} (admission ${JSON.stringify(entry.admission)})`);
  return found as VolSyncObject & { metadata: { annotations?: Record<string, string> } };
}

/** kopia's hidden --start-time/--end-time take "2006-01-02 15:04:05 MST" (fractions accepted). */
function kopiaTimestamp(rfc3339Utc: string): string {
  assert.match(rfc3339Utc, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
  return `${rfc3339Utc.slice(0, -1).replace("T", " ")} UTC`;
}

describe("the mover restores the snapshot the decision chose (kopia v0.22.3)", { skip: kopiaSkip("v0.22.3") }, () => {
  let repository: KopiaRepository;

  before(async () => {
    const found = findKopiaBinary("v0.22.3");
    if (!("path" in found)) throw new Error(found.skipReason);
    repository = await createKopiaRepository({ binaryPath: found.path, layout: "connect-then-create" });
  });

  after(async () => {
    await repository?.dispose();
  });

  /** The identity the mover backs this PVC up under: the generated ReplicationSource's Job. */
  async function backupSourceOf(pvcName: string): Promise<string> {
    const nowMs = Date.now();
    const entry = await planPvc(pvcNamed(pvcName), 1, namespace, DEFAULT_POLICY, createAssumedCatalog("fresh", nowMs), nowMs);
    const backup = moverRestoreSource(moverJobEnvironment(generatedOfKind(entry, "ReplicationSource")));
    const restore = moverRestoreSource(moverJobEnvironment(generatedOfKind(entry, "ReplicationDestination")));
    assert.equal(restore, backup, `${pvcName}: the RD restores from the identity the RS backs up to`);
    return backup;
  }

  let sourceCount = 0;
  async function sourceDir(files: Record<string, string>): Promise<string> {
    return repository.makeSourceDir(`src-${sourceCount++}`, files);
  }

  /** A complete snapshot as `source`, started at exactly `startTime` (RFC 3339 UTC) when given. */
  async function snapshotAt(source: string, startTime?: string, endTime?: string): Promise<string> {
    const dir = await sourceDir({ "file.txt": `${source} ${startTime ?? "now"} ${randomBytes(8).toString("hex")}` });
    return repository.snapshot(dir, {
      source,
      ...(startTime === undefined ? {} : { startTime: kopiaTimestamp(startTime) }),
      ...(endTime === undefined ? {} : { endTime: kopiaTimestamp(endTime) }),
    });
  }

  /** An incomplete ("limit reached") snapshot: a 3 MB source stopped by a 1 MB upload limit. */
  async function limitReachedAt(source: string, startTime?: string, endTime?: string): Promise<string> {
    const dir = await sourceDir({ "a.bin": randomBytes(3 << 20).toString("base64") });
    return repository.snapshot(dir, {
      source,
      uploadLimitMb: 1,
      ...(startTime === undefined ? {} : { startTime: kopiaTimestamp(startTime) }),
      ...(endTime === undefined ? {} : { endTime: kopiaTimestamp(endTime) }),
    });
  }

  async function listed(source: string): Promise<ListedEntry[]> {
    return JSON.parse(await listSourceAsMover(repository, source)) as ListedEntry[];
  }

  /** planPvc with a catalog that has just read the repository. */
  async function plan(pvc: PersistentVolumeClaim): Promise<PlanEntry> {
    const catalog = await loadCatalogOnce(repository);
    assert.equal(catalog.health().lastError, null);
    return planPvc(pvc, 1, namespace, DEFAULT_POLICY, catalog, Date.now());
  }

  /** The snapshot the decision chose, named in its detail: the one of `candidates` it mentions. */
  function decidedSnapshotId(entry: PlanEntry, candidates: readonly string[]): string {
    assert.equal(entry.decision, "restore", `${entry.pvc}: ${entry.decision}: ${entry.decisionDetail}`);
    const named = candidates.filter((id) => entry.decisionDetail?.includes(id));
    assert.equal(named.length, 1, `${entry.pvc}: the decision detail names one snapshot: ${entry.decisionDetail}`);
    return named[0]!;
  }

  /**
   * The heart of every case: the decision chose `expected`, the RD says so, and the mover given
   * that RD restores exactly it. Returns the RD for the "before" comparisons.
   */
  async function assertMoverRestoresDecision(pvc: PersistentVolumeClaim, candidates: readonly string[], expected: string) {
    const entry = await plan(pvc);
    const decided = decidedSnapshotId(entry, candidates);
    assert.equal(decided, expected, `${entry.pvc}: the decision chose ${decided}, the time rule gives ${expected}`);
    const destination = generatedOfKind(entry, "ReplicationDestination");
    const moverTakes = chosenSnapshotId(await chooseMoverSnapshot(repository, destination));
    assert.equal(
      moverTakes,
      decided,
      `${entry.pvc}: the mover restores ${moverTakes ?? "nothing (empty volume)"} with ${JSON.stringify(moverJobEnvironment(destination))}, the decision chose ${decided}`,
    );
    assert.equal(destination.metadata.annotations?.[ANNOTATION_RESTORE_SNAPSHOT_ID], decided, `${entry.pvc}: ${ANNOTATION_RESTORE_SNAPSHOT_ID}`);
    return destination;
  }

  /** The same RD as the code wrote it before pinning: the annotation's text raw, no previous. */
  function withRawAnnotation(destination: VolSyncObject, annotation: string | undefined): VolSyncObject {
    const { restoreAsOf: _pinned, previous: _previous, ...kopia } = destination.spec?.kopia ?? {};
    return { ...destination, spec: { ...destination.spec, kopia: { ...kopia, ...(annotation === undefined ? {} : { restoreAsOf: annotation }) } } };
  }

  async function moverTakesWith(destination: VolSyncObject): Promise<string | null> {
    return chosenSnapshotId(await chooseMoverSnapshot(repository, destination));
  }

  describe("(a) complete snapshots only", () => {
    const name = "complete-only";
    let source: string;
    let early: string;
    let halfSecond: string;
    let newest: string;

    before(async () => {
      source = await backupSourceOf(name);
      early = await snapshotAt(source, "2026-11-25T08:00:00Z");
      halfSecond = await snapshotAt(source, "2026-11-25T09:00:00.5Z");
      newest = await snapshotAt(source, "2026-11-25T10:00:00.123456789Z");
      assert.deepEqual(
        (await listed(source)).map((s) => [s.id, s.startTime]),
        [
          [early, "2026-11-25T08:00:00Z"],
          [halfSecond, "2026-11-25T09:00:00.5Z"],
          [newest, "2026-11-25T10:00:00.123456789Z"],
        ],
      );
    });

    it("restores the newest snapshot when no restore point is asked for", async () => {
      await assertMoverRestoresDecision(pvcNamed(name), [early, halfSecond, newest], newest);
    });

    it("restores the snapshot at or before a whole-second restore-as-of, not the one half a second after it", async () => {
      const annotation = "2026-11-25T09:00:00Z";
      const destination = await assertMoverRestoresDecision(pvcNamed(name, annotation), [early, halfSecond, newest], early);
      // Before: the raw text lets the mover take the snapshot 0.5 s after the requested time.
      assert.equal(await moverTakesWith(withRawAnnotation(destination, annotation)), halfSecond);
    });
  });

  describe("(b) a newer incomplete snapshot from an upload killed after a checkpoint", () => {
    const name = "killed-upload";
    let source: string;
    let older: string;
    let complete: string;
    let checkpoints: string[];

    before(async () => {
      source = await backupSourceOf(name);
      older = await snapshotAt(source);
      complete = await snapshotAt(source);
      // A source that takes seconds to hash (a 2 GiB sparse file), checkpointed every 200 ms,
      // killed with SIGKILL as soon as kopia has saved a checkpoint manifest.
      const dir = await sourceDir({ "a.txt": "first", "b.txt": "second" });
      const sparse = await open(join(dir, "zeros.img"), "w");
      await sparse.truncate(2 * 1024 ** 3);
      await sparse.close();
      const upload = repository.spawn(["snapshot", "create", dir, `--override-source=${source}`, "--checkpoint-interval=200ms"]);
      const exited = new Promise<number | null>((resolve) => upload.once("exit", (code) => resolve(code)));
      let finished = false;
      void exited.then(() => (finished = true));
      await eventually("a checkpoint manifest", async () => (finished || (await listed(source)).some((s) => s.incomplete !== undefined) ? true : undefined), {
        timeoutMs: 30_000,
        intervalMs: 50,
      });
      assert.ok(!finished, "the upload finished before any checkpoint: make the source slower");
      assert.ok(upload.pid !== undefined);
      process.kill(upload.pid, "SIGKILL");
      await exited;
      const after = await listed(source);
      checkpoints = after.filter((s) => s.incomplete === "checkpoint").map((s) => s.id);
      assert.ok(checkpoints.length >= 1, `kopia lists the checkpoint: ${JSON.stringify(after)}`);
      assert.deepEqual(
        after.slice(0, 2).map((s) => s.id),
        [older, complete],
      );
      assert.ok(
        after.slice(2).every((s) => s.incomplete === "checkpoint"),
        "the checkpoints are the newest entries",
      );
    });

    it("restores the newest complete snapshot, not the checkpoint", async () => {
      const destination = await assertMoverRestoresDecision(pvcNamed(name), [older, complete, ...checkpoints], complete);
      // Before: no restore point, so the mover took the newest entry: a checkpoint.
      const before = await moverTakesWith(withRawAnnotation(destination, undefined));
      assert.ok(before !== null && checkpoints.includes(before), `unpinned, the mover takes ${before}`);
    });
  });

  describe("(c) a newer incomplete snapshot from an upload limit", () => {
    const name = "upload-limit";
    let source: string;
    let complete: string;
    let cut: string;

    before(async () => {
      source = await backupSourceOf(name);
      complete = await snapshotAt(source);
      cut = await limitReachedAt(source);
      assert.deepEqual(
        (await listed(source)).map((s) => [s.id, s.incomplete]),
        [
          [complete, undefined],
          [cut, "limit reached"],
        ],
      );
    });

    it("restores the complete snapshot, not the one the limit cut short", async () => {
      const destination = await assertMoverRestoresDecision(pvcNamed(name), [complete, cut], complete);
      assert.equal(await moverTakesWith(withRawAnnotation(destination, undefined)), cut);
    });
  });

  describe("(d) restore-as-of in every RFC 3339 form (the contract's table)", () => {
    const name = "as-of-forms";
    const times = {
      T1: "2026-11-19T22:30:00Z",
      T2: "2026-11-19T23:30:00.25Z",
      T3: "2026-11-20T00:00:00.5Z",
      T4: "2026-11-20T01:30:00Z",
      T5: "2026-11-20T10:00:00Z",
    } as const;
    type Label = keyof typeof times;
    const ids = {} as Record<Label, string>;
    // annotation text → [what a time comparison picks, what the real mover took with it raw]
    const table: [string, Label, Label | null][] = [
      ["2026-11-20T01:00:00Z", "T3", "T3"],
      ["2026-11-20T00:00:00Z", "T2", "T3"],
      ["2026-11-20T02:00:00+02:00", "T2", "T4"],
      ["2026-11-19T19:00:00-05:00", "T2", null],
      ["2026-11-20t00:00:00z", "T2", "T5"],
      ["2026-11-19T22:30:00.000Z", "T1", null],
    ];

    before(async () => {
      const source = await backupSourceOf(name);
      for (const label of Object.keys(times) as Label[]) ids[label] = await snapshotAt(source, times[label]);
      assert.deepEqual(
        (await listed(source)).map((s) => s.startTime),
        Object.values(times),
      );
    });

    for (const [annotation, timeRule, rawMover] of table) {
      it(`restores ${timeRule} for restore-as-of ${annotation}`, async () => {
        const destination = await assertMoverRestoresDecision(pvcNamed(name, annotation), Object.values(ids), ids[timeRule]);
        // Before: the raw text reproduces what the contract measured on the real mover.
        const before = await moverTakesWith(withRawAnnotation(destination, annotation));
        assert.equal(before, rawMover === null ? null : ids[rawMover]);
        if (rawMover !== timeRule) assert.notEqual(before, ids[timeRule]);
      });
    }
  });

  describe("(e) snapshots within one second of the chosen one", () => {
    it("restores a whole-second snapshot with two later ones in the same second (previous)", async () => {
      const name = "same-second";
      const source = await backupSourceOf(name);
      const prior = await snapshotAt(source, "2026-11-26T09:00:00Z");
      const whole = await snapshotAt(source, "2026-11-26T10:00:00Z");
      const quarter = await snapshotAt(source, "2026-11-26T10:00:00.25Z");
      const threeQuarters = await snapshotAt(source, "2026-11-26T10:00:00.75Z");
      const nextSecond = await snapshotAt(source, "2026-11-26T10:00:01Z");
      const all = [prior, whole, quarter, threeQuarters, nextSecond];
      assert.deepEqual(
        (await listed(source)).map((s) => s.id),
        all,
      );

      const annotation = "2026-11-26T10:00:00.1Z";
      const destination = await assertMoverRestoresDecision(pvcNamed(name, annotation), all, whole);
      assert.equal(destination.spec?.kopia?.restoreAsOf, "2026-11-26T10:00:00Z");
      assert.equal(destination.spec?.kopia?.previous, 2);
      // Before: the raw text excludes the whole second itself ("Z" sorts after "."): an hour older.
      assert.equal(await moverTakesWith(withRawAnnotation(destination, annotation)), prior);
      // And pinning without previous would take the newest of the same second.
      assert.equal(await moverTakesWith(withRawAnnotation(destination, "2026-11-26T10:00:00Z")), threeQuarters);
    });

    it("restores a whole-second complete snapshot with an incomplete one half a second later", async () => {
      const name = "same-second-incomplete";
      const source = await backupSourceOf(name);
      const whole = await snapshotAt(source, "2026-11-26T10:00:00Z");
      const cut = await limitReachedAt(source, "2026-11-26T10:00:00.5Z");
      assert.deepEqual(
        (await listed(source)).map((s) => [s.id, s.incomplete]),
        [
          [whole, undefined],
          [cut, "limit reached"],
        ],
      );
      const destination = await assertMoverRestoresDecision(pvcNamed(name), [whole, cut], whole);
      assert.equal(destination.spec?.kopia?.restoreAsOf, "2026-11-26T10:00:00Z");
      assert.equal(destination.spec?.kopia?.previous, 1);
      assert.equal(await moverTakesWith(withRawAnnotation(destination, undefined)), cut);
    });

    it("restores a complete snapshot when an incomplete one has the very same start time and ends later", async () => {
      const name = "same-start";
      const source = await backupSourceOf(name);
      const complete = await snapshotAt(source, "2026-11-27T10:00:00.5Z", "2026-11-27T10:00:01Z");
      const cut = await limitReachedAt(source, "2026-11-27T10:00:00.5Z", "2026-11-27T10:00:02Z");
      // kopia's order: start time, then end time.
      assert.deepEqual(
        (await listed(source)).map((s) => [s.id, s.startTime, s.incomplete]),
        [
          [complete, "2026-11-27T10:00:00.5Z", undefined],
          [cut, "2026-11-27T10:00:00.5Z", "limit reached"],
        ],
      );
      const destination = await assertMoverRestoresDecision(pvcNamed(name), [complete, cut], complete);
      assert.equal(await moverTakesWith(withRawAnnotation(destination, undefined)), cut);
    });

    it("restores whichever of two complete snapshots with the same start time the decision chose", async () => {
      const name = "same-start-complete";
      const source = await backupSourceOf(name);
      const first = await snapshotAt(source, "2026-11-28T10:00:00Z", "2026-11-28T10:00:02Z");
      const second = await snapshotAt(source, "2026-11-28T10:00:00Z", "2026-11-28T10:00:01Z");
      const order = (await listed(source)).map((s) => s.id);
      assert.deepEqual(order, [second, first], "kopia orders equal start times by end time");
      const entry = await plan(pvcNamed(name));
      const decided = decidedSnapshotId(entry, [first, second]);
      const destination = generatedOfKind(entry, "ReplicationDestination");
      assert.equal(await moverTakesWith(destination), decided);
      assert.equal(destination.metadata.annotations?.[ANNOTATION_RESTORE_SNAPSHOT_ID], decided);
    });

    it("never restores one of two snapshots with the same start and end time unless the mover takes that one", async () => {
      const name = "same-start-end";
      const source = await backupSourceOf(name);
      const first = await snapshotAt(source, "2026-11-29T10:00:00Z", "2026-11-29T10:00:01Z");
      const second = await snapshotAt(source, "2026-11-29T10:00:00Z", "2026-11-29T10:00:01Z");
      const entry = await plan(pvcNamed(name));
      assert.notEqual(entry.decision, "fresh", `${entry.pvc}: two snapshots exist, an empty volume is wrong`);
      if (entry.decision !== "restore") return;
      const decided = decidedSnapshotId(entry, [first, second]);
      assert.equal(await moverTakesWith(generatedOfKind(entry, "ReplicationDestination")), decided);
    });
  });

  describe("(f) StatefulSet ordinals whose VolSync names collide after the 50-character cut", () => {
    const ordinals = ["data-kafka-broker-production-eu-west-1-cluster-abc-0", "data-kafka-broker-production-eu-west-1-cluster-abc-1"];

    it("restores ordinal 0 from its own identity and leaves ordinal 1 fresh", async () => {
      const sources = await Promise.all(ordinals.map((name) => backupSourceOf(name)));
      assert.notEqual(sources[0], sources[1]);
      const own = await snapshotAt(sources[0]!);
      await assertMoverRestoresDecision(pvcNamed(ordinals[0]!), [own], own);
      const other = await plan(pvcNamed(ordinals[1]!));
      assert.equal(other.decision, "fresh", `${other.pvc}: ${other.decisionDetail}`);
    });

    it("restores neither ordinal from the identity VolSync's automatic naming gives both", async () => {
      const statefulSet = ["data-kafka-broker-staging-eu-west-1-cluster-abcdef-0", "data-kafka-broker-staging-eu-west-1-cluster-abcdef-1"];
      // What a ReplicationSource without explicit identity (VolSync's automatic naming) backed up to.
      const shared = `${automaticUsername(`${statefulSet[0]}-backup`)}@${namespace}:/data`;
      assert.equal(automaticUsername(`${statefulSet[1]}-backup`), automaticUsername(`${statefulSet[0]}-backup`));
      for (const name of statefulSet) assert.notEqual(backupSourceOf(name), shared, `${name} writes its own identity`);
      await snapshotAt(shared);
      for (const name of statefulSet) {
        const entry = await plan(pvcNamed(name));
        // Unknown, naming the way out (restore-from-identity or skip-restore): never adopted, never empty.
        assert.equal(entry.decision, "unknown", `${entry.pvc} must not adopt ${shared}: ${entry.decisionDetail}`);
      }
    });
  });
});
