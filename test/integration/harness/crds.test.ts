import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import type { KubernetesObject } from "@kubernetes/client-node";
import { requireOrSkip } from "../../harness/binaries.ts";
import { startTestCluster, type TestCluster } from "../../harness/cluster.ts";
import { installCrds, type InstalledCrds } from "../../harness/crds.ts";
import { apiErrorMessage, applyObject, createNamespace, createObjectApi, testFieldManager } from "../../harness/kube-objects.ts";
import { backupTargetOf, desiredReplicationDestination, desiredReplicationSource, desiredSecret } from "../../../webhook/domain/desired-resources.ts";
import { DEFAULT_POLICY } from "../../../webhook/domain/policy.ts";
import { backupIdentity } from "../../../webhook/domain/kopia-identity.ts";

function replicationSource(namespace: string, name: string, kopia: Record<string, unknown>, extraSpec: Record<string, unknown> = {}): KubernetesObject {
  return {
    apiVersion: "volsync.backube/v1alpha1",
    kind: "ReplicationSource",
    metadata: { name, namespace },
    spec: { sourcePVC: "data", trigger: { schedule: "17 * * * *" }, kopia, ...extraSpec },
  } as KubernetesObject;
}

const validKopia = {
  repository: "data-volsync-kopia",
  copyMethod: "Snapshot",
  retain: { hourly: 24, daily: 7 },
  username: "data-dst",
  hostname: "apps",
};

/** Creating is a real write: the apiserver validates against the CRD's OpenAPI schema. */
async function createRejection(cluster: TestCluster, object: KubernetesObject): Promise<string> {
  try {
    await createObjectApi(cluster).create(object, undefined, undefined, testFieldManager);
  } catch (error) {
    return apiErrorMessage(error);
  }
  assert.fail(`the apiserver accepted ${object.kind} ${object.metadata?.name}`);
}

describe("real CRDs in the test cluster", { skip: requireOrSkip(["etcd", "kube-apiserver"]) }, () => {
  let cluster: TestCluster;
  let installed: InstalledCrds;
  let namespace: string;

  before(async () => {
    cluster = await startTestCluster();
    installed = await installCrds(cluster);
    namespace = await createNamespace(cluster);
  });

  after(async () => {
    await cluster?.stop();
  });

  it("installs VolSync, snapshot, populator and cert-manager CRDs as Established", () => {
    for (const name of [
      "replicationsources.volsync.backube",
      "replicationdestinations.volsync.backube",
      "kopiamaintenances.volsync.backube",
      "volumesnapshots.snapshot.storage.k8s.io",
      "volumesnapshotcontents.snapshot.storage.k8s.io",
      "volumesnapshotclasses.snapshot.storage.k8s.io",
      "volumepopulators.populator.storage.k8s.io",
    ]) {
      assert.ok(installed.names.includes(name), name);
    }
    if (installed.certManagerSkipReason === undefined) {
      assert.ok(installed.names.includes("certificates.cert-manager.io"));
      assert.ok(installed.names.includes("issuers.cert-manager.io"));
    } else {
      // Only when the Go module proxy is unreachable outside CI; the reason says why.
      assert.match(installed.certManagerSkipReason, /cert-manager CRDs unavailable/);
    }
  });

  it("accepts a valid Kopia ReplicationSource and ReplicationDestination", async () => {
    const source = await applyObject(cluster, replicationSource(namespace, "valid-source", validKopia));
    assert.equal(source.metadata?.uid !== undefined, true);
    const destination = await applyObject(cluster, {
      apiVersion: "volsync.backube/v1alpha1",
      kind: "ReplicationDestination",
      metadata: { name: "valid-dst", namespace },
      spec: {
        trigger: { manual: "restore-once" },
        kopia: { repository: "data-volsync-kopia", copyMethod: "Snapshot", accessModes: ["ReadWriteOnce"], capacity: "1Gi" },
      },
    } as KubernetesObject);
    assert.equal((destination as { spec?: { kopia?: { capacity?: string } } }).spec?.kopia?.capacity, "1Gi");
  });

  it("rejects a ReplicationSource whose retain.hourly is a string, with the schema message", async () => {
    const message = await createRejection(cluster, replicationSource(namespace, "bad-retain", { ...validKopia, retain: { hourly: "twenty-four" } }));
    assert.match(message, /spec\.kopia\.retain\.hourly: Invalid value: "string": spec\.kopia\.retain\.hourly in body must be of type integer: "string"/);
  });

  it("rejects a ReplicationSource with a copyMethod outside the enum, listing the allowed values", async () => {
    const message = await createRejection(cluster, replicationSource(namespace, "bad-copy", { ...validKopia, copyMethod: "Teleport" }));
    assert.match(message, /spec\.kopia\.copyMethod: Unsupported value: "Teleport": supported values: "Direct", "None", "Clone", "Snapshot"/);
  });

  it("rejects a ReplicationSource whose trigger schedule is not a cron expression", async () => {
    const message = await createRejection(cluster, replicationSource(namespace, "bad-schedule", validKopia, { trigger: { schedule: "every hour" } }));
    assert.match(message, /spec\.trigger\.schedule/);
  });

  it("accepts the Secret, ReplicationSource and ReplicationDestination that the domain generates", async () => {
    const pvc = {
      metadata: { name: "postgres-data.primary", namespace },
      spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "5Gi" } } },
    };
    const target = backupTargetOf(pvc, "postgres-data.primary", namespace);
    const secret = desiredSecret(target, { KOPIA_PASSWORD: Buffer.from("secret").toString("base64") });
    const source = desiredReplicationSource(target, DEFAULT_POLICY, {
      schedule: "17 * * * *",
      retain: { hourly: 24, daily: 7, weekly: 4, monthly: 2 },
    });
    const freshDestination = desiredReplicationDestination(target, DEFAULT_POLICY, { paused: true });
    for (const object of [secret, source, freshDestination]) {
      const stored = await createObjectApi(cluster).create(object as KubernetesObject, undefined, undefined, testFieldManager);
      // No field is pruned: every generated field is part of the schema.
      assert.deepEqual((stored as { spec?: unknown }).spec, (object as { spec?: unknown }).spec, `${object.kind} ${object.metadata.name}`);
    }
  });

  it("accepts a generated ReplicationDestination pinned with restoreAsOf and previous, with NFS mover volumes", async () => {
    const pvc = {
      metadata: { name: "media", namespace },
      spec: { accessModes: ["ReadWriteMany"], resources: { requests: { storage: "20Gi" } } },
    };
    const restore = {
      point: { restoreAsOf: "2026-11-01T00:00:00.123456789Z", previous: 1 },
      snapshotId: "k1",
      source: { identity: backupIdentity("media-backup", namespace).written, fields: "explicit" as const },
    };
    const target = backupTargetOf(pvc, "media", namespace, restore);
    const policy = { ...DEFAULT_POLICY, nfs: { server: "nas.local", path: "/backups/kopia", mountPath: "repository" } };
    const destination = desiredReplicationDestination(target, policy, { paused: false });
    const stored = await createObjectApi(cluster).create(destination as unknown as KubernetesObject, undefined, undefined, testFieldManager);
    assert.deepEqual((stored as { spec?: unknown }).spec, destination.spec);
  });

  it("accepts a VolumeSnapshot referencing a class", async () => {
    const snapshot = await applyObject(cluster, {
      apiVersion: "snapshot.storage.k8s.io/v1",
      kind: "VolumeSnapshot",
      metadata: { name: "snap", namespace },
      spec: { volumeSnapshotClassName: "longhorn-snapclass", source: { persistentVolumeClaimName: "data" } },
    } as KubernetesObject);
    assert.ok(snapshot.metadata?.uid);
  });

  it("validates cert-manager Certificates against the real schema", async (t) => {
    if (installed.certManagerSkipReason !== undefined) return t.skip(installed.certManagerSkipReason);
    const certificate = {
      apiVersion: "cert-manager.io/v1",
      kind: "Certificate",
      metadata: { name: "pvc-guardian-serving", namespace },
      spec: {
        secretName: "pvc-guardian-tls",
        dnsNames: ["pvc-guardian.pvc-guardian.svc"],
        issuerRef: { name: "pvc-guardian-selfsigned", kind: "Issuer" },
        privateKey: { algorithm: "ECDSA", size: 256, rotationPolicy: "Always" },
      },
    } as KubernetesObject;
    const stored = await applyObject(cluster, certificate);
    assert.ok(stored.metadata?.uid);
    const message = await createRejection(cluster, {
      ...certificate,
      metadata: { name: "bad", namespace },
      spec: { secretName: "x", issuerRef: { name: "i" }, privateKey: { algorithm: "DSA" } },
    } as KubernetesObject);
    assert.match(message, /spec\.privateKey\.algorithm: Unsupported value: "DSA"/);
  });
});
