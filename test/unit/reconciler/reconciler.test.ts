import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createReconciler } from "../../../webhook/reconciler/reconciler.ts";
import { createNoopReconcilerMetrics } from "../../../webhook/reconciler/reconciler-metrics.ts";
import { createRecordingLogger, createSilentLogger } from "../../support/recording-logger.ts";
import { DEFAULT_POLICY } from "../../../webhook/domain/policy.ts";
import { ANNOTATION_BOUND_OBSERVED_AT, ANNOTATION_BOUND_PVC_UID } from "../../../webhook/domain/wire-names.ts";
import { backupTargetOf, desiredReplicationDestination, desiredReplicationSource, desiredSecret } from "../../../webhook/domain/desired-resources.ts";
import {
  PERSISTENT_VOLUME_CLAIMS,
  REPLICATION_DESTINATIONS,
  REPLICATION_SOURCES,
  type KubeObject,
  type KubeObjects,
} from "../../../webhook/kube/kube-objects.ts";
import { createInMemoryObjects } from "./in-memory-objects.ts";
import { reconcilerSettings } from "../../support/default-settings.ts";

// One reconcile pass over in-memory objects: what it deletes for a PVC recreated under the name
// of an earlier one, in which order, and what it holds back when the delete fails.

const log = createSilentLogger();
const HOUR = 3_600_000;
const policy = { ...DEFAULT_POLICY, firstBackupDelayMs: 2 * HOUR };
const sourceData = { KOPIA_PASSWORD: "cA==" };

async function seed() {
  const objects = createInMemoryObjects();
  const { namespace, name } = policy.sourceSecret;
  await objects.create({ apiVersion: "v1", kind: "Secret", metadata: { name, namespace }, data: sourceData });
  const startMs = Date.parse("2026-11-25T06:00:00Z");
  // Two PVCs whose objects were made and whose RSs run: "kept" is the same PVC throughout,
  // "redo" is deleted and created again under the same name below.
  for (const pvcName of ["kept", "redo"]) {
    const pvc = await objects.create({
      apiVersion: "v1",
      kind: "PersistentVolumeClaim",
      metadata: { name: pvcName, namespace: "app", labels: { backup: "hourly" } },
      spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } },
      status: { phase: "Bound" },
    });
    const target = backupTargetOf(pvc as never, pvcName, "app");
    await objects.create(desiredSecret(target, sourceData) as unknown as KubeObject);
    const rd = desiredReplicationDestination(target, policy, { paused: true }) as unknown as KubeObject;
    rd.metadata.annotations = { [ANNOTATION_BOUND_OBSERVED_AT]: new Date(startMs).toISOString(), [ANNOTATION_BOUND_PVC_UID]: pvc.metadata.uid! };
    await objects.create(rd);
    await objects.create(desiredReplicationSource(target, policy, { schedule: "0 * * * *", retain: policy.tiers["hourly"]!.retain }) as unknown as KubeObject);
  }
  const earlier = (await objects.get(PERSISTENT_VOLUME_CLAIMS, "app", "redo"))!;
  await objects.delete(PERSISTENT_VOLUME_CLAIMS, "app", "redo", { uid: earlier.metadata.uid! });
  const { uid: _uid, resourceVersion: _rv, ...metadata } = earlier.metadata;
  const recreated = await objects.create({ ...earlier, metadata, status: { phase: "Pending" } });
  objects.writes = 0;
  return { objects, clock: { ms: startMs + 10 * HOUR }, earlierUid: earlier.metadata.uid!, recreatedUid: recreated.metadata.uid! };
}

const reconcilerOver = (objects: KubeObjects, clock: { ms: number }) =>
  createReconciler({ ...reconcilerSettings, objects, policy, log, metrics: createNoopReconcilerMetrics(), now: () => clock.ms });

describe("reconciler over in-memory objects", () => {
  it("deletes the RS of an earlier PVC of the same name, writes nothing for other PVCs, and creates it again only after the delay", async () => {
    const { objects, clock, recreatedUid } = await seed();
    const listedRs = await objects.get(REPLICATION_SOURCES, "app", "redo-backup");
    let report = await reconcilerOver(objects, clock).runPass();
    assert.equal(report.outcome, "ok");
    assert.equal(report.deleted, 1);
    assert.equal(await objects.get(REPLICATION_SOURCES, "app", "redo-backup"), undefined);
    assert.ok(await objects.get(REPLICATION_SOURCES, "app", "kept-backup"), "the unchanged PVC keeps its RS");
    // Pending: nothing to observe yet; the delete is the only write.
    assert.equal(objects.writes, 1);
    assert.ok(listedRs);

    await objects.replace({ ...(await objects.get(PERSISTENT_VOLUME_CLAIMS, "app", "redo"))!, status: { phase: "Bound" } });
    objects.writes = 0;
    report = await reconcilerOver(objects, clock).runPass();
    const rd = await objects.get(REPLICATION_DESTINATIONS, "app", "redo-backup");
    assert.equal(rd?.metadata.annotations?.[ANNOTATION_BOUND_PVC_UID], recreatedUid);
    assert.equal(rd?.metadata.annotations?.[ANNOTATION_BOUND_OBSERVED_AT], new Date(clock.ms).toISOString());
    assert.equal(objects.writes, 1, "only the RD's new observation is written");
    assert.equal(await objects.get(REPLICATION_SOURCES, "app", "redo-backup"), undefined);

    clock.ms += 2 * HOUR - 1;
    await reconcilerOver(objects, clock).runPass();
    assert.equal(await objects.get(REPLICATION_SOURCES, "app", "redo-backup"), undefined, "not before the delay");
    clock.ms += 1;
    report = await reconcilerOver(objects, clock).runPass();
    assert.equal(report.created, 1);
    const again = await objects.get(REPLICATION_SOURCES, "app", "redo-backup");
    assert.notEqual(again?.metadata.uid, listedRs.metadata.uid);
  });

  it("holds the PVC's other writes when the delete fails, so the next pass still finds the RS", async () => {
    const { objects, clock, earlierUid } = await seed();
    await objects.replace({ ...(await objects.get(PERSISTENT_VOLUME_CLAIMS, "app", "redo"))!, status: { phase: "Bound" } });
    const failingDelete: KubeObjects = { ...objects, delete: async () => Promise.reject(new Error("injected failure: delete")) };
    let report = await reconcilerOver(failingDelete, clock).runPass();
    assert.equal(report.outcome, "error");
    assert.equal(report.failed, 1);
    assert.ok(await objects.get(REPLICATION_SOURCES, "app", "redo-backup"));
    const rd = await objects.get(REPLICATION_DESTINATIONS, "app", "redo-backup");
    assert.equal(rd?.metadata.annotations?.[ANNOTATION_BOUND_PVC_UID], earlierUid, "the RD still names the earlier PVC");

    report = await reconcilerOver(objects, clock).runPass();
    assert.equal(report.deleted, 1);
    assert.equal(await objects.get(REPLICATION_SOURCES, "app", "redo-backup"), undefined);
  });

  it("marks every line of a pass with the reconciler and one reconcileId, another for the next pass", async () => {
    const { objects, clock } = await seed();
    const recorded = createRecordingLogger();
    const reconciler = createReconciler({ ...reconcilerSettings, objects, policy, log: recorded, metrics: createNoopReconcilerMetrics(), now: () => clock.ms });
    await reconciler.runPass();
    const firstPass = recorded.entries.splice(0);
    await reconciler.runPass();
    const secondPass = recorded.entries.splice(0);
    const idsOf = (entries: typeof firstPass) => new Set(entries.map((entry) => entry.fields["reconcileId"]));
    assert.ok(firstPass.some((entry) => entry.message === "replication source of an earlier pvc deleted"));
    assert.ok(firstPass.every((entry) => entry.fields["controller"] === "reconciler"));
    assert.equal(idsOf(firstPass).size, 1);
    assert.equal(idsOf(secondPass).size, 1);
    assert.notDeepEqual(idsOf(firstPass), idsOf(secondPass));
    const deleted = firstPass.find((entry) => entry.message === "replication source of an earlier pvc deleted")!;
    assert.deepEqual(
      { kind: deleted.fields["kind"], namespace: deleted.fields["namespace"], name: deleted.fields["name"], pvc: deleted.fields["pvc"] },
      { kind: "ReplicationSource", namespace: "app", name: "redo-backup", pvc: "redo" },
    );
  });

  it("logs each pass's counts at info and its per-PVC inventory only at debug", async () => {
    const { objects, clock } = await seed();
    const recorded = createRecordingLogger();
    const reconciler = createReconciler({ ...reconcilerSettings, objects, policy, log: recorded, metrics: createNoopReconcilerMetrics(), now: () => clock.ms });
    const report = await reconciler.runPass();
    assert.ok(report.inventory.length > 0, "the seeded cluster has protected PVCs");
    const done = recorded.entries.find((entry) => entry.message === "reconcile pass done")!;
    assert.equal(done.level, "info");
    assert.equal(done.fields["protectedPvcs"], report.protectedPvcs);
    assert.equal(done.fields["inventory"], undefined);
    const inventory = recorded.entries.find((entry) => entry.message === "reconcile pass inventory")!;
    assert.equal(inventory.level, "debug");
    assert.deepEqual(inventory.fields["inventory"], report.inventory);
  });

  it("leaves an RS alone that was replaced after it was listed", async () => {
    const { objects, clock } = await seed();
    const replacing: KubeObjects = {
      ...objects,
      async delete(kind, namespace, name, preconditions, signal) {
        // Someone deletes and creates it between our list and our delete.
        const live = (await objects.get(kind, namespace, name))!;
        await objects.delete(kind, namespace, name, { uid: live.metadata.uid! });
        const { uid: _uid, resourceVersion: _rv, ...metadata } = live.metadata;
        await objects.create({ ...live, metadata });
        return objects.delete(kind, namespace, name, preconditions, signal);
      },
    };
    const report = await reconcilerOver(replacing, clock).runPass();
    assert.equal(report.failed, 1);
    assert.equal(report.deleted, 0);
    assert.ok(await objects.get(REPLICATION_SOURCES, "app", "redo-backup"), "the replacement is not deleted on the old uid");
  });
});

describe("a policy the installed VolSync cannot run", () => {
  it("writes the Secret clone but no ReplicationDestination or ReplicationSource", async () => {
    const objects = createInMemoryObjects();
    const { namespace, name } = policy.sourceSecret;
    await objects.create({ apiVersion: "v1", kind: "Secret", metadata: { name, namespace }, data: sourceData });
    await objects.create({
      apiVersion: "v1",
      kind: "PersistentVolumeClaim",
      metadata: { name: "nfs-app", namespace: "app", labels: { backup: "hourly" } },
      spec: { accessModes: ["ReadWriteOnce"] },
      status: { phase: "Bound" },
    });
    const unsupported = createReconciler({
      ...reconcilerSettings,
      objects,
      policy,
      log,
      metrics: createNoopReconcilerMetrics(),
      policySupport: () => ({ supported: false, problem: "no nfs mover volumes" }),
    });
    const report = await unsupported.runPass();
    assert.equal(report.created, 1);
    assert.ok(await objects.get({ apiVersion: "v1", kind: "Secret", plural: "secrets", namespaced: true }, "app", "volsync-nfs-app"));
    assert.equal(await objects.get(REPLICATION_DESTINATIONS, "app", "nfs-app-backup"), undefined);
    assert.equal(await objects.get(REPLICATION_SOURCES, "app", "nfs-app-backup"), undefined);
  });
});
