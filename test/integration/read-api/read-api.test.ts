// The read API over real HTTPS, with ServiceAccount tokens minted by the real kube-apiserver
// (TokenRequest), verified against the JWKS that apiserver serves, the snapshot catalog over a
// repository made by the real kopia, and the audit over the real Kubernetes adapter.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { CoreV1Api, type KubernetesObject } from "@kubernetes/client-node";
import { decodeProtectedHeader } from "jose";
import { requireOrSkip } from "../../harness/binaries.ts";
import { startTestCluster, type TestCluster } from "../../harness/cluster.ts";
import { installCrds } from "../../harness/crds.ts";
import { createKopiaRepository, findKopiaBinary, kopiaSkip, type KopiaRepository } from "../../harness/kopia.ts";
import { applyObject, createNamespace, requestJson } from "../../harness/kube-objects.ts";
import { callHttps } from "../../support/https-call.ts";
import { createSilentLogger } from "../../support/recording-logger.ts";
import { createTestPki, type TestPki } from "../../support/test-pki.ts";
import { backupTargetOf, desiredReplicationDestination, desiredSecret } from "../../../webhook/domain/desired-resources.ts";
import { DEFAULT_POLICY } from "../../../webhook/domain/policy.ts";
import { createKubeClients, type KubeClients } from "../../../webhook/kube/kube-client.ts";
import { createKopiaCatalog, type KopiaCatalog } from "../../../webhook/kopia/snapshot-catalog.ts";
import { createApiServerKeySource, createServiceAccountTokenVerifier, type TokenVerifier } from "../../../webhook/server/bearer-auth.ts";
import { createClusterAuditSource } from "../../../webhook/server/cluster-audit-source.ts";
import { createHttpsApiServerGet } from "../../support/https-api-server-get.ts";
import { startHttpsListener, type HttpsListener } from "../../../webhook/server/https-listener.ts";
import { createReadApiRoutes } from "../../../webhook/server/read-api-routes.ts";
import { createTlsReloader, type TlsReloader } from "../../../webhook/server/tls-reloader.ts";
import { signingKeyReadSettings, kubeClientSettings, defaultSettings } from "../../support/default-settings.ts";

const silent = createSilentLogger();
const audience = "pvc-guardian";

async function writeSigningKey(dir: string): Promise<void> {
  const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  await writeFile(path.join(dir, "sa.pub"), publicKey.export({ type: "spki", format: "pem" }));
  await writeFile(path.join(dir, "sa.key"), privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
}

describe("the read API with real ServiceAccount tokens", { skip: requireOrSkip(["etcd", "kube-apiserver"]) || kopiaSkip() }, () => {
  let keyDir: string;
  let cluster: TestCluster;
  let namespace: string;
  let core: CoreV1Api;
  let kube: KubeClients;
  let pki: TestPki;
  let tls: TlsReloader;
  let repository: KopiaRepository;
  let catalog: KopiaCatalog;
  let verifier: TokenVerifier;
  let listener: HttpsListener;
  let snapshotId: string;
  let jwksFetches = 0;

  function serve(routeVerifier: TokenVerifier, allowed: string[]): Promise<HttpsListener> {
    const app = createReadApiRoutes({
      verifier: routeVerifier,
      allowedServiceAccounts: allowed,
      catalog,
      audit: createClusterAuditSource(kube.objects),
      policy: DEFAULT_POLICY,
      requestTimeoutMs: defaultSettings.readApi.requestTimeoutMs,
      log: silent,
    });
    return startHttpsListener({ fetch: app.fetch, tls, host: "127.0.0.1", port: 0, log: silent, limits: defaultSettings.transport });
  }

  async function token(serviceAccount: string, audiences: string[] = [audience]): Promise<string> {
    const response = await core.createNamespacedServiceAccountToken({
      name: serviceAccount,
      namespace,
      // 600 s is the shortest expiry the API server grants.
      body: { spec: { expirationSeconds: 600, audiences } },
    });
    const minted = response.status?.token;
    assert.ok(minted, "TokenRequest returned a token");
    return minted;
  }

  async function get(port: number, apiPath: string, bearer?: string) {
    const answer = await callHttps(pki.ca.certPem, port, { path: apiPath, headers: bearer === undefined ? {} : { authorization: `Bearer ${bearer}` } });
    return { status: answer.status, body: JSON.parse(answer.text) as Record<string, unknown>, headers: answer.headers };
  }

  before(async () => {
    // Our own signing key files, so the test can rotate the key by rewriting them and restarting.
    keyDir = await mkdtemp(path.join(tmpdir(), "pvc-guardian-sa-keys-"));
    await writeSigningKey(keyDir);
    cluster = await startTestCluster({
      apiserverArgs: [`--service-account-key-file=${path.join(keyDir, "sa.pub")}`, `--service-account-signing-key-file=${path.join(keyDir, "sa.key")}`],
    });
    await installCrds(cluster, { certManager: false });
    namespace = await createNamespace(cluster);
    core = cluster.kubeConfig().makeApiClient(CoreV1Api);
    for (const name of ["pvc-guardian", "backup-reader", "stranger"]) {
      await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } });
    }
    kube = createKubeClients({ ...kubeClientSettings, kubeconfigPath: cluster.kubeconfigPath });

    // pvc-guardian reads the keys with its own ServiceAccount token (default audience: the API
    // server's), which shows the discovery endpoints need no RBAC rule of ours.
    const get = createHttpsApiServerGet({ server: cluster.server, caPem: cluster.caPem, token: () => token("pvc-guardian", [cluster.serviceAccountIssuer]) });
    const keys = createApiServerKeySource(async (p, accept, signal) => {
      if (p.endsWith("jwks")) jwksFetches++;
      return get(p, accept, signal);
    });
    verifier = createServiceAccountTokenVerifier({ ...signingKeyReadSettings, keys, audience, minRefreshIntervalMs: 0 });

    const binary = findKopiaBinary();
    assert.ok("path" in binary);
    repository = await createKopiaRepository({ binaryPath: binary.path, layout: "create" });
    const source = await repository.makeSourceDir("data", { "hello.txt": "hello" });
    snapshotId = await repository.snapshot(source, { source: `data-backup@${namespace}:/data` });
    catalog = createKopiaCatalog({
      repositoryPath: repository.rootPath,
      passwordFile: repository.passwordFile,
      refreshIntervalMs: 60_000,
      freshnessBoundMs: 600_000,
      missRefreshTimeoutMs: 1_000,
    });
    await catalog.start();

    pki = await createTestPki();
    const issued = await pki.issue("read-api");
    tls = await createTlsReloader({ certPath: issued.certPath, keyPath: issued.keyPath, pollIntervalMs: 60_000, log: createSilentLogger() });
    listener = await serve(verifier, [`system:serviceaccount:${namespace}:backup-reader`]);

    // One protected PVC with its generated objects, one without them.
    for (const name of ["data", "orphaned"]) {
      await applyObject(cluster, {
        apiVersion: "v1",
        kind: "PersistentVolumeClaim",
        metadata: { name, namespace, labels: { backup: "hourly" } },
        spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } },
      });
    }
    const target = backupTargetOf({ spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } } }, "data", namespace);
    await applyObject(cluster, desiredSecret(target, { KOPIA_PASSWORD: Buffer.from("x").toString("base64") }) as KubernetesObject);
    await applyObject(cluster, desiredReplicationDestination(target, DEFAULT_POLICY, { paused: true }) as KubernetesObject);
  });

  after(async () => {
    await listener?.close(1_000);
    tls?.stop();
    catalog?.stop();
    kube?.close();
    await cluster?.stop();
    await repository?.dispose();
    await pki?.cleanup();
    if (keyDir) await rm(keyDir, { recursive: true, force: true });
  });

  it("answers an allowed ServiceAccount with the decision, identity and snapshots", async () => {
    const answer = await get(listener.port, `/v1/backups/${namespace}/data`, await token("backup-reader"));
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(answer.body["identity"], `data-backup@${namespace}:/data`);
    assert.deepEqual(answer.body["decision"], {
      answer: "restore",
      snapshot: snapshotId,
      snapshotTime: (answer.body["snapshots"] as { startTime: string }[])[0]!.startTime,
      completeSnapshots: 1,
    });
    assert.equal(answer.body["exists"], true);
    assert.equal(answer.body["tier"], "hourly");
    assert.deepEqual(
      (answer.body["snapshots"] as { id: string }[]).map((s) => s.id),
      [snapshotId],
    );

    const fresh = await get(listener.port, `/v1/backups/${namespace}/never-backed-up`, await token("backup-reader"));
    assert.equal(fresh.status, 200);
    assert.deepEqual(fresh.body["decision"], { answer: "fresh" });
    assert.equal(fresh.body["exists"], false);
  });

  it("audits every protected PVC: objects present, last snapshot, verdict", async () => {
    const answer = await get(listener.port, "/v1/audit", await token("backup-reader"));
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    const rows = (answer.body["rows"] as { namespace: string; pvc: string; verdict: string; objects: object; lastSnapshotTime: string | null }[]).filter(
      (r) => r.namespace === namespace,
    );
    assert.deepEqual(
      rows.map((r) => [r.pvc, r.verdict]),
      [
        ["data", "ok"],
        ["orphaned", "missing-objects"],
      ],
    );
    assert.deepEqual(rows[0]!.objects, { secret: true, replicationDestination: true, replicationSource: false });
    assert.ok(rows[0]!.lastSnapshotTime);
    assert.equal(rows[1]!.lastSnapshotTime, null);
    assert.equal(answer.body["repositoryReadable"], true);
  });

  it("says which snapshot the restore pinned and its verdict, in the backups answer and the audit", async () => {
    const annotate = async (annotations: Record<string, string | null>) => {
      const patched = await requestJson(cluster, "PATCH", `/apis/volsync.backube/v1alpha1/namespaces/${namespace}/replicationdestinations/data-backup`, {
        body: { metadata: { annotations } },
        contentType: "application/merge-patch+json",
      });
      assert.equal(patched.status, 200, JSON.stringify(patched.body));
    };
    const backups = async () => (await get(listener.port, `/v1/backups/${namespace}/data`, await token("backup-reader"))).body["restore"];
    const auditRow = async () =>
      (
        (await get(listener.port, "/v1/audit", await token("backup-reader"))).body["rows"] as {
          namespace: string;
          pvc: string;
          verdict: string;
          detail: string | null;
          restore: unknown;
        }[]
      ).find((r) => r.namespace === namespace && r.pvc === "data")!;
    assert.equal(await backups(), null, "no restore was started for it");

    await annotate({ "volsync.backup/restore-snapshot-id": snapshotId });
    assert.deepEqual(await backups(), { snapshot: snapshotId, verdict: null, detail: null }, "pending while the mover runs");

    await annotate({
      "volsync.backup/restore-verdict": "verified",
      "volsync.backup/restore-verdict-detail": "The mover restored 1 files, 1 directories and 0 symbolic links (5 B), as the snapshot records.",
    });
    assert.deepEqual(await backups(), {
      snapshot: snapshotId,
      verdict: "verified",
      detail: "The mover restored 1 files, 1 directories and 0 symbolic links (5 B), as the snapshot records.",
    });
    let row = await auditRow();
    assert.equal(row.verdict, "ok");
    assert.equal(row.detail, `restored and verified from snapshot ${snapshotId}`);

    await annotate({ "volsync.backup/restore-verdict": "empty", "volsync.backup/restore-verdict-detail": "The mover found no eligible snapshot." });
    row = await auditRow();
    assert.equal(row.verdict, "restore-failed");
    assert.equal(row.detail, "restore empty: The mover found no eligible snapshot.");

    await annotate({ "volsync.backup/restore-snapshot-id": null, "volsync.backup/restore-verdict": null, "volsync.backup/restore-verdict-detail": null });
    assert.equal((await auditRow()).verdict, "ok");
  });

  it("answers 401 without a token and for a token that is not a JWT", async () => {
    const missing = await get(listener.port, "/v1/audit");
    assert.equal(missing.status, 401);
    assert.equal(missing.body["reason"], "missing-token");
    assert.match(String(missing.headers["www-authenticate"]), /^Bearer realm="pvc-guardian"/);
    const garbage = await get(listener.port, "/v1/audit", "not-a-jwt");
    assert.equal(garbage.status, 401);
    assert.equal(garbage.body["reason"], "invalid");
  });

  it("answers 401 for a token minted for another audience", async () => {
    const answer = await get(listener.port, `/v1/backups/${namespace}/data`, await token("backup-reader", [cluster.serviceAccountIssuer]));
    assert.equal(answer.status, 401);
    assert.equal(answer.body["reason"], "wrong-audience");
    assert.match(String(answer.body["message"]), /audience "pvc-guardian"/);
  });

  it("answers 401 for an expired token", async () => {
    // The API server will not mint a token shorter than 600 s, and the test will not wait ten
    // minutes; so the verifier's clock is moved past the real token's real `exp` instead. The
    // token, its signature and its exp claim are all the API server's; only "now" is moved.
    const real = await token("backup-reader");
    const later = createServiceAccountTokenVerifier({
      ...signingKeyReadSettings,
      keys: createApiServerKeySource(createHttpsApiServerGet({ server: cluster.server, caPem: cluster.caPem, token: () => cluster.adminToken })),
      audience,
      now: () => Date.now() + 601_000,
    });
    const lateListener = await serve(later, [`system:serviceaccount:${namespace}:backup-reader`]);
    try {
      const expired = await get(lateListener.port, "/v1/audit", real);
      assert.equal(expired.status, 401);
      assert.equal(expired.body["reason"], "expired");
      // The same token on the real clock is still good, so the 401 above is the expiry alone.
      const good = await get(listener.port, "/v1/audit", real);
      assert.equal(good.status, 200);
    } finally {
      await lateListener.close(1_000);
    }
  });

  it("answers 403 for a valid token of a ServiceAccount not on the allow-list", async () => {
    const answer = await get(listener.port, "/v1/audit", await token("stranger"));
    assert.equal(answer.status, 403);
    assert.equal(answer.body["subject"], `system:serviceaccount:${namespace}:stranger`);
    assert.match(String(answer.body["message"]), /readApi\.allowedServiceAccounts/);
  });

  it("follows a rotated signing key: re-reads the JWKS on an unknown kid, and refuses tokens of the removed key", async () => {
    const before = await token("backup-reader");
    assert.equal((await get(listener.port, "/v1/audit", before)).status, 200);
    const fetchesBefore = jwksFetches;

    // A new key pair in the same files, and the API server restarted on it: it now signs with the
    // new key and publishes only that one.
    await writeSigningKey(keyDir);
    await cluster.restart();
    const after = await token("backup-reader");
    assert.notEqual(decodeProtectedHeader(after).kid, decodeProtectedHeader(before).kid);

    const rotated = await get(listener.port, "/v1/audit", after);
    assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
    assert.ok(jwksFetches > fetchesBefore, "the unknown kid made the verifier read the keys again");

    const old = await get(listener.port, "/v1/audit", before);
    assert.equal(old.status, 401);
    assert.equal(old.body["reason"], "invalid");
  });
});
