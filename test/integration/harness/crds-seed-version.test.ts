import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import type { KubernetesObject } from "@kubernetes/client-node";
import { requireOrSkip } from "../../harness/binaries.ts";
import { startTestCluster, type TestCluster } from "../../harness/cluster.ts";
import { installCrds, type InstalledCrds } from "../../harness/crds.ts";
import { createNamespace, requestJson } from "../../harness/kube-objects.ts";
import { backupTargetOf, desiredReplicationDestination, desiredReplicationSource } from "../../../webhook/domain/desired-resources.ts";
import { DEFAULT_POLICY } from "../../../webhook/domain/policy.ts";

type Stored = { spec?: { kopia?: Record<string, unknown> } };

// The seed design runs VolSync v0.17.7: the generated objects must fit its schemas too.
describe("generated VolSync objects against the v0.17.7 CRDs", { skip: requireOrSkip(["etcd", "kube-apiserver"]) }, () => {
  let cluster: TestCluster;
  let installed: InstalledCrds;
  let namespace: string;

  before(async () => {
    cluster = await startTestCluster();
    installed = await installCrds(cluster, { volSyncVersion: "v0.17.7", certManager: false });
    namespace = await createNamespace(cluster);
  });

  after(async () => {
    await cluster?.stop();
  });

  /** Creates with strict field validation, so an unknown field is an error rather than pruned. */
  async function createStrict(object: { kind: string; metadata: { name: string } }) {
    const plural = object.kind === "ReplicationSource" ? "replicationsources" : "replicationdestinations";
    return requestJson<Stored & { message?: string }>(
      cluster,
      "POST",
      `/apis/volsync.backube/v1alpha1/namespaces/${namespace}/${plural}?fieldValidation=Strict`,
      { body: object },
    );
  }

  it("installs the two v0.17.7 CRDs and no KopiaMaintenance", () => {
    assert.ok(installed.names.includes("replicationsources.volsync.backube"));
    assert.ok(installed.names.includes("replicationdestinations.volsync.backube"));
    assert.equal(installed.names.includes("kopiamaintenances.volsync.backube"), false);
  });

  it("accepts the generated ReplicationSource and ReplicationDestination field for field", async () => {
    const target = backupTargetOf({ spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "5Gi" } } } }, "postgres-data", namespace);
    const source = desiredReplicationSource(target, DEFAULT_POLICY, { schedule: "17 * * * *", retain: { hourly: 24, daily: 7 } });
    const destination = desiredReplicationDestination(target, DEFAULT_POLICY, { paused: true });
    for (const object of [source, destination] as const) {
      const response = await createStrict(object);
      assert.equal(response.status, 201, response.body?.message);
      assert.deepEqual(response.body?.spec, object.spec);
    }
  });

  it("rejects NFS mover volumes, which only v0.17.11 knows", async () => {
    const target = backupTargetOf({ spec: { accessModes: ["ReadWriteMany"] } }, "media", namespace);
    const policy = { ...DEFAULT_POLICY, nfs: { server: "nas.local", path: "/backups/kopia", mountPath: "repository" } };
    const response = await createStrict(
      desiredReplicationDestination(target, policy, { paused: false }) as unknown as KubernetesObject & { kind: string; metadata: { name: string } },
    );
    assert.equal(response.status, 400, response.body?.message);
    assert.match(response.body?.message ?? "", /unknown field "spec\.kopia\.moverVolumes\[0\]\.volumeSource\.nfs"/);
  });
});
