import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { requireOrSkip } from "../../harness/binaries.ts";
import { startTestCluster, type TestCluster } from "../../harness/cluster.ts";
import { installCrds } from "../../harness/crds.ts";
import { createNamespace } from "../../harness/kube-objects.ts";
import { eventually } from "../../support/eventually.ts";
import { createKubeClients, type KubeClients } from "../../../webhook/kube/kube-client.ts";
import { KubeApiError, REPLICATION_SOURCES, type KubeObject } from "../../../webhook/kube/kube-objects.ts";
import { kubeClientSettings } from "../../support/default-settings.ts";

// Every write of the adapter is strict: a field the installed CRD does not know is an error, not
// silently pruned. VolSync v0.17.7's CRDs have no `nfs` mover volume; the apiserver's default
// validation would store `volumeSource: {}` with a 201, and every mover Job would then fail.

const skip = requireOrSkip(["etcd", "kube-apiserver"]);

/** A ReplicationSource written by hand (not by the code under test) with an NFS mover volume. */
function sourceWithNfs(namespace: string, name: string): KubeObject {
  return {
    apiVersion: "volsync.backube/v1alpha1",
    kind: "ReplicationSource",
    metadata: { name, namespace },
    spec: {
      sourcePVC: "data",
      trigger: { schedule: "0 * * * *" },
      kopia: {
        repository: "volsync-data",
        copyMethod: "Direct",
        moverVolumes: [{ mountPath: "repository", volumeSource: { nfs: { server: "nas.local", path: "/backups/kopia" } } }],
      },
    },
  };
}

const unknownNfsField = /unknown field "spec\.kopia\.moverVolumes\[0\]\.volumeSource\.nfs"/;

describe("strict field validation on every write", { skip }, () => {
  let cluster: TestCluster;
  let kube: KubeClients;
  let namespace: string;

  before(async () => {
    cluster = await startTestCluster();
    await installCrds(cluster, { volSyncVersion: "v0.17.7", certManager: false });
    kube = createKubeClients({ ...kubeClientSettings, kubeconfigPath: cluster.kubeconfigPath });
    namespace = await createNamespace(cluster);
  });
  after(async () => {
    kube?.close();
    await cluster?.stop();
  });

  const refusal = async (write: Promise<unknown>): Promise<KubeApiError> => {
    const error = await write.then(
      (stored) => assert.fail(`the write was accepted: ${JSON.stringify((stored as KubeObject)["spec"])}`),
      (error: unknown) => error,
    );
    assert.ok(error instanceof KubeApiError, String(error));
    return error;
  };

  it("refuses a create with a field the v0.17.7 CRD does not know, and stores nothing", async () => {
    const error = await refusal(kube.objects.create(sourceWithNfs(namespace, "created")));
    assert.equal(error.status, 400);
    assert.match(error.message, unknownNfsField);
    assert.equal(await kube.objects.get(REPLICATION_SOURCES, namespace, "created"), undefined);
  });

  it("refuses a server-side apply with that field, and stores nothing", async () => {
    // Server-side apply builds a typed patch and refuses an undeclared field whatever the
    // validation level (HTTP 500, "field not declared in schema"); the point is that it is loud.
    const error = await refusal(kube.objects.apply(sourceWithNfs(namespace, "applied"), { force: true }));
    assert.match(error.message, /spec\.kopia\.moverVolumes\[0\]\.volumeSource\.nfs: field not declared in schema/);
    assert.equal(await kube.objects.get(REPLICATION_SOURCES, namespace, "applied"), undefined);
  });

  it("refuses a replace that adds that field, and keeps the stored object as it was", async () => {
    const plain = sourceWithNfs(namespace, "replaced");
    const spec = plain["spec"] as { kopia: Record<string, unknown> };
    delete spec.kopia["moverVolumes"];
    const stored = await kube.objects.create(plain);
    const error = await refusal(kube.objects.replace({ ...sourceWithNfs(namespace, "replaced"), metadata: stored.metadata }));
    assert.match(error.message, unknownNfsField);
    const live = await kube.objects.get(REPLICATION_SOURCES, namespace, "replaced");
    assert.equal(live?.metadata.resourceVersion, stored.metadata.resourceVersion);
    assert.equal((live?.["spec"] as { kopia: Record<string, unknown> }).kopia["moverVolumes"], undefined);
  });

  it("accepts the same object once the v0.17.11 CRDs are installed", async () => {
    await installCrds(cluster, { volSyncVersion: "v0.17.11", certManager: false });
    // The apiserver picks up a changed schema shortly after the CRD update is stored.
    const stored = await eventually("the v0.17.11 schema to accept nfs mover volumes", () => kube.objects.create(sourceWithNfs(namespace, "accepted")), {
      timeoutMs: 15_000,
      intervalMs: 200,
      isRetryable: () => true,
    });
    const volumes = (stored["spec"] as { kopia: { moverVolumes: unknown } }).kopia.moverVolumes;
    assert.deepEqual(volumes, [{ mountPath: "repository", volumeSource: { nfs: { server: "nas.local", path: "/backups/kopia" } } }]);
  });
});
