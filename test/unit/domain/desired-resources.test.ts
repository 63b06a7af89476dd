import { test } from "node:test";
import assert from "node:assert/strict";
import {
  backupTargetOf,
  desiredReplicationDestination,
  desiredReplicationSource,
  desiredSecret,
  isDueForFirstBackup,
  restoreTargetOf,
  restoreTargetOfDestination,
} from "../../../webhook/domain/desired-resources.ts";
import { backupIdentity } from "../../../webhook/domain/kopia-identity.ts";
import { generatedNames } from "../../../webhook/domain/resource-names.ts";
import { snapshotRecord } from "../../../webhook/domain/snapshot-catalog.ts";
import { DEFAULT_POLICY, DEFAULT_RETENTION, type Policy } from "../../../webhook/domain/policy.ts";
import type { PersistentVolumeClaim } from "../../../webhook/domain/pvc.ts";

const appData: PersistentVolumeClaim = {
  apiVersion: "v1",
  kind: "PersistentVolumeClaim",
  metadata: {
    name: "app-data",
    namespace: "media",
    labels: { backup: "hourly", "app.kubernetes.io/instance": "media", "argocd.argoproj.io/instance": "media" },
    annotations: { "argocd.argoproj.io/tracking-id": "media:/PersistentVolumeClaim:media/app-data", "volsync.backup/restore-as-of": "2026-11-20T00:00:00Z" },
    uid: "2f6c1d9e-8b7a-4c3d-9e1f-0a2b3c4d5e6f",
  },
  spec: { accessModes: ["ReadWriteMany", "ReadWriteOnce"], resources: { requests: { storage: "10Gi" } }, storageClassName: "nfs-client" },
};
const ourLabels = { "app.kubernetes.io/managed-by": "pvc-guardian", "volsync.backup/pvc": "app-data" };
const mover = { runAsUser: 568, runAsGroup: 568, fsGroup: 568 };
const nfsPolicy: Pick<Policy, "resources" | "nfs"> = {
  resources: DEFAULT_POLICY.resources,
  nfs: { server: "nas.lan", path: "/volume1/kopia", mountPath: "repository" },
};

test("backupTargetOf takes the first access mode and the requested storage", () => {
  assert.deepEqual(backupTargetOf(appData, "app-data", "media"), {
    pvcName: "app-data",
    namespace: "media",
    names: { replicationSource: "app-data-backup", replicationDestination: "app-data-backup", secret: "volsync-app-data", pvcLabelValue: "app-data" },
    identity: { username: "app-data-backup", hostname: "media", path: "/data", key: "app-data-backup@media:/data" },
    accessMode: "ReadWriteMany",
    capacity: "10Gi",
  });
});

const accessModeFallbacks: Array<{ name: string; spec: PersistentVolumeClaim["spec"] }> = [
  { name: "no spec", spec: undefined },
  { name: "no accessModes", spec: { resources: { requests: { storage: "1Gi" } } } },
  { name: "an empty accessModes list", spec: { accessModes: [] } },
];
for (const row of accessModeFallbacks) {
  test(`backupTargetOf falls back to ReadWriteOnce with ${row.name}`, () => {
    const claim: PersistentVolumeClaim = { metadata: { name: "x" }, ...(row.spec ? { spec: row.spec } : {}) };
    assert.equal(backupTargetOf(claim, "x", "ns").accessMode, "ReadWriteOnce");
  });
}

test("backupTargetOf leaves capacity out when the PVC requests none, and keeps a numeric request as text", () => {
  assert.equal("capacity" in backupTargetOf({ spec: {} }, "x", "ns"), false);
  assert.equal(backupTargetOf({ spec: { resources: { requests: { storage: 1073741824 } } } }, "x", "ns").capacity, "1073741824");
});

test("desiredSecret copies every key of the source Secret under our labels only", () => {
  const target = backupTargetOf(appData, "app-data", "media");
  const source = { KOPIA_PASSWORD: "c2VjcmV0", KOPIA_REPOSITORY: "ZmlsZXN5c3RlbTovL3JlcG9zaXRvcnk=", EXTRA: "eA==" };
  const secret = desiredSecret(target, source);
  assert.deepEqual(secret, {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: "volsync-app-data", namespace: "media", labels: ourLabels },
    type: "Opaque",
    data: source,
  });
  assert.notEqual(secret.data, source, "a copy, so later edits to one do not leak into the other");
});

// The `fresh` row of the README's decision table (How the pieces fit): the RD is created paused.
// Its fields are the policy defaults of the README's Configuration section.
test("desiredReplicationDestination for a fresh PVC is paused and carries the default policy exactly", () => {
  const rd = desiredReplicationDestination(backupTargetOf(appData, "app-data", "media"), DEFAULT_POLICY, { paused: true });
  assert.deepEqual(rd, {
    apiVersion: "volsync.backube/v1alpha1",
    kind: "ReplicationDestination",
    metadata: { name: "app-data-backup", namespace: "media", labels: ourLabels },
    spec: {
      trigger: { manual: "restore-once" },
      paused: true,
      kopia: {
        repository: "volsync-app-data",
        copyMethod: "Snapshot",
        storageClassName: "longhorn",
        volumeSnapshotClassName: "longhorn-snapclass",
        cacheCapacity: "2Gi",
        moverSecurityContext: mover,
        username: "app-data-backup",
        hostname: "media",
        accessModes: ["ReadWriteMany"],
        capacity: "10Gi",
      },
    },
  });
});

test("desiredReplicationDestination for a restore is pinned to the chosen snapshot and records it", () => {
  const snapshot = snapshotRecord({
    id: "k7",
    startTime: "2026-11-20T00:00:00.250012345Z",
    endTime: "2026-11-20T00:05:00Z",
    incomplete: false,
    // A later snapshot: `stats` counts only what this upload read again; the root's summary has the totals.
    stats: { totalSize: 100, fileCount: 1, cachedFiles: 3, dirCount: 2, errorCount: 0 },
    summary: { files: 3, symlinks: 1, dirs: 2, size: 4096 },
  })!;
  const decision = {
    answer: "restore" as const,
    identity: "app-data-backup@media:/data",
    snapshot,
    completeSnapshots: 1,
    restorePoint: { restoreAsOf: snapshot.startTime, previous: 0 },
  };
  const source = { identity: backupIdentity("app-data-backup", "media").written, fields: "explicit" as const };
  const target = backupTargetOf(appData, "app-data", "media", restoreTargetOf(decision, source));
  const rd = desiredReplicationDestination(target, DEFAULT_POLICY, { paused: false });
  assert.equal(rd.spec.paused, false);
  assert.equal(rd.spec.kopia["restoreAsOf"], "2026-11-20T00:00:00.250012345Z");
  assert.equal("previous" in rd.spec.kopia, false);
  assert.equal(rd.metadata.annotations?.["volsync.backup/restore-snapshot-id"], "k7");
  assert.deepEqual(JSON.parse(rd.metadata.annotations?.["volsync.backup/restore-snapshot-stats"] ?? ""), {
    fileCount: 3,
    dirCount: 2,
    totalSize: 4096,
    symlinkCount: 1,
  });
  // Read back from the live object, the reconciler keeps exactly this restore.
  assert.deepEqual(restoreTargetOfDestination(rd), restoreTargetOf(decision, source));

  const skipping = backupTargetOf(
    appData,
    "app-data",
    "media",
    restoreTargetOf({ ...decision, restorePoint: { restoreAsOf: snapshot.startTime, previous: 2 } }, source),
  );
  assert.equal(desiredReplicationDestination(skipping, DEFAULT_POLICY, { paused: false }).spec.kopia["previous"], 2);

  const without = desiredReplicationDestination(backupTargetOf(appData, "app-data", "media"), DEFAULT_POLICY, { paused: false });
  assert.equal("restoreAsOf" in without.spec.kopia, false);
  assert.equal(without.metadata.annotations, undefined);
});

test("desiredReplicationDestination restoring from VolSync's automatic identity leaves username and hostname out", () => {
  const pvcName = "a".repeat(49);
  const backup = backupIdentity(generatedNames(pvcName).replicationDestination, "media");
  const snapshot = snapshotRecord({ id: "k8", startTime: "2026-11-20T00:00:00Z", endTime: "2026-11-20T00:00:00Z", incomplete: false })!;
  const decision = {
    answer: "restore" as const,
    identity: backup.automatic.key,
    snapshot,
    completeSnapshots: 1,
    restorePoint: { restoreAsOf: snapshot.startTime, previous: 0 },
  };
  const target = backupTargetOf(appData, pvcName, "media", restoreTargetOf(decision, { identity: backup.automatic, fields: "automatic" }));
  const rd = desiredReplicationDestination(target, DEFAULT_POLICY, { paused: false });
  assert.equal("username" in rd.spec.kopia, false);
  assert.equal("hostname" in rd.spec.kopia, false);
  assert.equal(rd.spec.kopia["restoreAsOf"], "2026-11-20T00:00:00Z");
  // The ReplicationSource still writes new backups under the PVC's own identity.
  const rs = desiredReplicationSource(target, DEFAULT_POLICY, { schedule: "0 * * * *", retain: DEFAULT_RETENTION });
  assert.equal(rs.spec.kopia["username"], backup.written.username);
});

// The fields of the README's Configuration section (`resources`, the tier's retention), the
// PVC's own identity and the schedule given.
test("desiredReplicationSource carries the schedule, the identity and the default policy exactly", () => {
  const rs = desiredReplicationSource(backupTargetOf(appData, "app-data", "media"), DEFAULT_POLICY, { schedule: "17 * * * *", retain: DEFAULT_RETENTION });
  assert.deepEqual(rs, {
    apiVersion: "volsync.backube/v1alpha1",
    kind: "ReplicationSource",
    metadata: { name: "app-data-backup", namespace: "media", labels: ourLabels },
    spec: {
      sourcePVC: "app-data",
      trigger: { schedule: "17 * * * *" },
      kopia: {
        repository: "volsync-app-data",
        copyMethod: "Snapshot",
        storageClassName: "longhorn",
        volumeSnapshotClassName: "longhorn-snapclass",
        cacheCapacity: "2Gi",
        moverSecurityContext: mover,
        username: "app-data-backup",
        hostname: "media",
        compression: "zstd-fastest",
        parallelism: 2,
        retain: { hourly: 24, daily: 7, weekly: 4, monthly: 2 },
      },
    },
  });
  assert.notEqual(rs.spec.kopia["retain"], DEFAULT_RETENTION, "a copy, so the policy cannot be changed through an object");
});

test("RS and RD pin the same Kopia identity, so the restore finds the backup's snapshots", () => {
  for (const [name, namespace] of [
    ["app-data", "media"],
    ["db.main", "prod_eu"],
    ["x".repeat(80), "n"],
  ] as const) {
    const target = backupTargetOf({}, name, namespace);
    const rs = desiredReplicationSource(target, DEFAULT_POLICY, { schedule: "0 * * * *", retain: {} });
    const rd = desiredReplicationDestination(target, DEFAULT_POLICY, { paused: false });
    assert.equal(rs.metadata.name, rd.metadata.name);
    assert.equal(rs.spec.kopia["username"], rd.spec.kopia["username"]);
    assert.equal(rs.spec.kopia["hostname"], rd.spec.kopia["hostname"]);
  }
});

test("an NFS repository adds moverVolumes to both RS and RD", () => {
  const target = backupTargetOf(appData, "app-data", "media");
  const expected = [{ mountPath: "repository", volumeSource: { nfs: { server: "nas.lan", path: "/volume1/kopia" } } }];
  assert.deepEqual(desiredReplicationSource(target, nfsPolicy, { schedule: "0 * * * *", retain: {} }).spec.kopia["moverVolumes"], expected);
  assert.deepEqual(desiredReplicationDestination(target, nfsPolicy, { paused: true }).spec.kopia["moverVolumes"], expected);
  assert.equal("moverVolumes" in desiredReplicationSource(target, DEFAULT_POLICY, { schedule: "0 * * * *", retain: {} }).spec.kopia, false);
});

test("generated objects copy none of the PVC's labels or annotations and have no ownerReferences", () => {
  const target = backupTargetOf(appData, "app-data", "media");
  const objects = [
    desiredSecret(target, { KOPIA_PASSWORD: "eA==" }),
    desiredReplicationDestination(target, nfsPolicy, { paused: false }),
    desiredReplicationSource(target, nfsPolicy, { schedule: "0 * * * *", retain: {} }),
  ];
  for (const object of objects) {
    assert.deepEqual(object.metadata.labels, ourLabels, object.kind);
    assert.equal(object.metadata.annotations, undefined, object.kind);
    assert.equal("ownerReferences" in object.metadata, false, object.kind);
    const text = JSON.stringify(object);
    assert.doesNotMatch(text, /argocd/);
    assert.doesNotMatch(text, /2f6c1d9e/, "nothing ties the object to this PVC's uid");
  }
});

test("a PVC name over 63 characters is a hashed label value with the full name in an annotation", () => {
  const long = `${"archive-".repeat(9)}data`;
  const target = backupTargetOf({}, long, "media");
  const rd = desiredReplicationDestination(target, DEFAULT_POLICY, { paused: true });
  assert.match(rd.metadata.labels["volsync.backup/pvc"]!, /^pvc-[0-9a-f]{24}$/);
  assert.deepEqual(rd.metadata.annotations, { "volsync.backup/pvc-name": long });
  assert.equal(rd.metadata.name.length, 63);
  assert.equal(desiredReplicationSource(target, DEFAULT_POLICY, { schedule: "0 * * * *", retain: {} }).spec.sourcePVC, long);
});

const HOUR = 3_600_000;
const dueRows: Array<{ name: string; boundAtMs: number | undefined; nowMs: number; due: boolean }> = [
  { name: "an unbound PVC is not due", boundAtMs: undefined, nowMs: 10 * HOUR, due: false },
  { name: "a PVC bound just now is not due", boundAtMs: 10 * HOUR, nowMs: 10 * HOUR, due: false },
  { name: "a PVC bound one millisecond short of the delay is not due", boundAtMs: 10 * HOUR, nowMs: 12 * HOUR - 1, due: false },
  { name: "a PVC bound exactly the delay ago is due", boundAtMs: 10 * HOUR, nowMs: 12 * HOUR, due: true },
  { name: "a PVC bound long ago is due", boundAtMs: 0, nowMs: 100 * HOUR, due: true },
];
for (const row of dueRows) {
  test(`isDueForFirstBackup: ${row.name}`, () => {
    assert.equal(isDueForFirstBackup(row.boundAtMs, row.nowMs, DEFAULT_POLICY.firstBackupDelayMs), row.due);
  });
}
