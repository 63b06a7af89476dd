import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createSweeper } from "../../../webhook/reconciler/sweeper.ts";
import { createNoopReconcilerMetrics } from "../../../webhook/reconciler/reconciler-metrics.ts";
import { DEFAULT_POLICY } from "../../../webhook/domain/policy.ts";
import { REPLICATION_DESTINATIONS, SECRETS } from "../../../webhook/kube/kube-objects.ts";
import { createInMemoryObjects } from "./in-memory-objects.ts";
import { silentLog } from "../../support/recording-log.ts";

const log = silentLog;
const MINUTE = 60_000;

async function seed(pvcs: string[], orphans: string[]) {
  const objects = createInMemoryObjects();
  for (const name of pvcs) {
    await objects.create({ apiVersion: "v1", kind: "PersistentVolumeClaim", metadata: { name, namespace: "app", labels: { backup: "hourly" } } });
  }
  for (const name of [...pvcs, ...orphans]) {
    const labels = { "app.kubernetes.io/managed-by": "pvc-guardian", "volsync.backup/pvc": name };
    await objects.create({ apiVersion: "v1", kind: "Secret", metadata: { name: `volsync-${name}`, namespace: "app", labels } });
    await objects.create({
      apiVersion: "volsync.backube/v1alpha1",
      kind: "ReplicationDestination",
      metadata: { name: `${name}-backup`, namespace: "app", labels },
    });
  }
  // Someone else's Secret that happens to name a PVC that is gone: never ours to delete.
  await objects.create({
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: "volsync-lookalike", namespace: "app", labels: { "volsync.backup/pvc": "lookalike" } },
  });
  objects.writes = 0;
  return objects;
}

function sweeperOver(objects: ReturnType<typeof createInMemoryObjects>, clock: { ms: number }, dryRun = false) {
  return createSweeper({
    objects,
    policy: DEFAULT_POLICY,
    log,
    metrics: createNoopReconcilerMetrics(),
    namespace: "pvc-guardian",
    gracePeriodMs: 10 * MINUTE,
    dryRun,
    now: () => clock.ms,
  });
}

describe("sweeper over in-memory objects", () => {
  it("deletes orphans after the grace period and nothing else", async () => {
    const objects = await seed(["kept"], ["gone"]);
    const clock = { ms: 0 };
    const sweeper = sweeperOver(objects, clock);
    assert.equal((await sweeper.runPass()).deleted, 0);
    clock.ms += 10 * MINUTE;
    const report = await sweeper.runPass();
    assert.equal(report.deleted, 2);
    assert.deepEqual(
      objects
        .all(SECRETS)
        .map((s) => s.metadata.name)
        .sort(),
      ["volsync-kept", "volsync-lookalike"],
    );
    assert.deepEqual(
      objects.all(REPLICATION_DESTINATIONS).map((s) => s.metadata.name),
      ["kept-backup"],
    );
  });

  for (const kind of ["PersistentVolumeClaim", "Secret", "ReplicationDestination", "ReplicationSource"]) {
    it(`deletes nothing when the ${kind} list is partial`, async () => {
      const objects = await seed(["kept"], ["gone"]);
      const clock = { ms: 0 };
      const sweeper = sweeperOver(objects, clock);
      await sweeper.runPass();
      clock.ms += 10 * MINUTE;
      objects.partialLists.add(kind);
      const report = await sweeper.runPass();
      assert.equal(report.outcome, "partial");
      assert.equal(objects.writes, 0);
    });
  }

  it("starts the grace period again after a restart", async () => {
    const objects = await seed([], ["gone"]);
    const clock = { ms: 0 };
    await sweeperOver(objects, clock).runPass();
    clock.ms += 10 * MINUTE;
    const restarted = sweeperOver(objects, clock);
    assert.equal((await restarted.runPass()).deleted, 0);
    clock.ms += 10 * MINUTE;
    assert.equal((await restarted.runPass()).deleted, 2);
  });

  it("leaves an object alone that was replaced after it was listed", async () => {
    const objects = await seed([], ["gone"]);
    const clock = { ms: 0 };
    const sweeper = sweeperOver(objects, clock);
    await sweeper.runPass();
    clock.ms += 10 * MINUTE;
    // Between this sweep's list and its delete, the Secret is recreated: a new uid.
    const original = objects.delete;
    objects.delete = async (kind, namespace, name, preconditions, signal) => {
      const live = await objects.get(kind, namespace, name);
      if (kind.kind === "Secret" && live) {
        await original(kind, namespace, name, { uid: live.metadata.uid! });
        await objects.create({ ...live, metadata: { name, namespace: namespace!, labels: live.metadata.labels! } });
      }
      return original(kind, namespace, name, preconditions, signal);
    };
    const report = await sweeper.runPass();
    assert.equal(report.deleted, 1);
    assert.equal(report.skipped, 1);
    assert.ok(objects.all(SECRETS).some((s) => s.metadata.name === "volsync-gone"));
  });

  it("reports without deleting in dry-run mode", async () => {
    const objects = await seed([], ["gone"]);
    const clock = { ms: 0 };
    const sweeper = sweeperOver(objects, clock, true);
    await sweeper.runPass();
    clock.ms += 10 * MINUTE;
    const report = await sweeper.runPass();
    assert.equal(report.outcome, "dry-run");
    assert.equal(report.due.length, 2);
    assert.equal(objects.writes, 0);
  });
});
