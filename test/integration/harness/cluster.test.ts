import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { CoreV1Api } from "@kubernetes/client-node";
import { binaryVersions, requireOrSkip } from "../../harness/binaries.ts";
import { startTestCluster, type TestCluster } from "../../harness/cluster.ts";
import { createNamespace, deleteNamespace, deletePvc, requestJson, setPvcPhase } from "../../harness/kube-objects.ts";
import { isProcessRunning } from "../../support/process-running.ts";

describe("test cluster", { skip: requireOrSkip(["etcd", "kube-apiserver"]) }, () => {
  let cluster: TestCluster;

  before(async () => {
    cluster = await startTestCluster();
  });

  after(async () => {
    await cluster?.stop();
  });

  it("accepts a PVC, and a test can set it Bound through the status subresource", async () => {
    const namespace = await createNamespace(cluster);
    const core = cluster.kubeConfig().makeApiClient(CoreV1Api);
    const created = await core.createNamespacedPersistentVolumeClaim({
      namespace,
      body: {
        metadata: { name: "data", labels: { "app.kubernetes.io/name": "harness" } },
        spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } }, storageClassName: "longhorn" },
      },
    });
    assert.equal(created.status?.phase, "Pending");
    // The StorageObjectInUseProtection admission plugin is on, as in a real cluster.
    assert.deepEqual(created.metadata?.finalizers, ["kubernetes.io/pvc-protection"]);

    const bound = await setPvcPhase(cluster, namespace, "data");
    assert.equal(bound.status?.phase, "Bound");
    assert.equal(bound.status?.capacity?.storage, "1Gi");
    const read = await core.readNamespacedPersistentVolumeClaim({ name: "data", namespace });
    assert.equal(read.status?.phase, "Bound");

    await deletePvc(cluster, namespace, "data");
    const after = await requestJson(cluster, "GET", `/api/v1/namespaces/${namespace}/persistentvolumeclaims/data`);
    assert.equal(after.status, 404);
    await deleteNamespace(cluster, namespace);
    assert.equal((await requestJson(cluster, "GET", `/api/v1/namespaces/${namespace}`)).status, 404);
  });

  it("reports the Kubernetes version the harness asked for", async () => {
    const version = await requestJson<{ gitVersion: string; major: string; minor: string }>(cluster, "GET", "/version");
    assert.equal(version.body?.gitVersion, binaryVersions["kube-apiserver"]);
  });

  it("authenticates the admin by client certificate as well as by token", async () => {
    const kc = cluster.kubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: "test", server: cluster.server, caFile: cluster.caCertPath }],
      users: [{ name: "cert", certFile: cluster.adminClientCertificate.certPath, keyFile: cluster.adminClientCertificate.keyPath }],
      contexts: [{ name: "cert", cluster: "test", user: "cert" }],
      currentContext: "cert",
    });
    const namespaces = await kc.makeApiClient(CoreV1Api).listNamespace();
    assert.ok(namespaces.items.some((n) => n.metadata?.name === "default"));
  });

  it("refuses requests without credentials beyond the public health endpoints", async () => {
    const anonymous = await requestJson(cluster, "GET", "/api/v1/namespaces", { token: null });
    assert.equal(anonymous.status, 403);
    const wrong = await requestJson(cluster, "GET", "/api/v1/namespaces", { token: "not-the-token" });
    assert.equal(wrong.status, 401);
  });

  it("keeps objects across an apiserver restart and is unreachable while stopped", async () => {
    const namespace = await createNamespace(cluster);
    const core = cluster.kubeConfig().makeApiClient(CoreV1Api);
    await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: "kept" }, data: { a: "1" } } });
    const etcdPid = cluster.pids().etcd;
    const firstApiserverPid = cluster.pids().apiserver;
    assert.ok(firstApiserverPid !== undefined);

    await cluster.stopApiserver();
    assert.equal(cluster.pids().apiserver, undefined);
    assert.equal(isProcessRunning(firstApiserverPid), false);
    await assert.rejects(core.readNamespacedConfigMap({ name: "kept", namespace }), (error: Error) => {
      assert.match(String((error.cause as Error | undefined)?.message ?? error.message), /ECONNREFUSED/);
      return true;
    });

    await cluster.startApiserver();
    assert.notEqual(cluster.pids().apiserver, firstApiserverPid);
    assert.equal(cluster.pids().etcd, etcdPid);
    const read = await core.readNamespacedConfigMap({ name: "kept", namespace });
    assert.deepEqual(read.data, { a: "1" });
  });

  it("leaves no process running and no temp dir after stop()", async () => {
    const second = await startTestCluster();
    const { etcd, apiserver } = second.pids();
    assert.ok(etcd !== undefined && apiserver !== undefined);
    assert.ok(isProcessRunning(etcd) && isProcessRunning(apiserver));
    await second.stop();
    assert.equal(isProcessRunning(etcd), false);
    assert.equal(isProcessRunning(apiserver), false);
    assert.deepEqual(second.pids(), { etcd: undefined, apiserver: undefined });
    const { existsSync } = await import("node:fs");
    assert.equal(existsSync(second.dir), false);
  });
});
