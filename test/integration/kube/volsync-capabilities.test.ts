import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { pino } from "pino";
import { createCertificateAuthority, issueServerCertificate } from "../../../certs/pki.ts";
import { requireOrSkip } from "../../harness/binaries.ts";
import { startTestCluster, writeKubeconfig, type TestCluster } from "../../harness/cluster.ts";
import { installCrds } from "../../harness/crds.ts";
import { createNamespace, requestJson } from "../../harness/kube-objects.ts";
import { findObject, manifestsDir, readObjects } from "../../support/manifest-files.ts";
import { loadConfig } from "../../../webhook/config.ts";
import { startGuardian, type RunningGuardian } from "../../../webhook/main.ts";
import type { Policy } from "../../../webhook/domain/policy.ts";
import { createKubeClients, type KubeClients } from "../../../webhook/kube/kube-client.ts";
import { EVENTS, REPLICATION_DESTINATIONS, SECRETS } from "../../../webhook/kube/kube-objects.ts";
import { createPvcEventRecorder } from "../../../webhook/kube/pvc-events.ts";
import { createVolSyncSupport, type VolSyncSupport } from "../../../webhook/kube/volsync-capabilities.ts";
import { answerReview } from "../../support/answer-review.ts";
import { createReviewHandlers } from "../../../webhook/admission/review-handlers.ts";
import { createAdmissionGenerator } from "../../../webhook/reconciler/admission-generator.ts";
import { startKubeEnvironment, type KubeEnvironment } from "../../harness/kube-environment.ts";
import { countingMetrics } from "../../support/counting-metrics.ts";
import { eventually } from "../../support/eventually.ts";
import { failingObjects } from "../../support/failing-objects.ts";
import { protectedEvaluation, SNAPSHOT } from "../../support/protected-evaluation.ts";
import { pvcObject } from "../../support/pvc-object.ts";
import { pvcCreateReviewOf } from "../../support/pvc-review.ts";
import { createRecordingLogger } from "../../support/recording-logger.ts";
import { kubeClientSettings, admissionGeneratorSettings, defaultSettings } from "../../support/default-settings.ts";

// What the installed VolSync CRDs support, read from the real apiserver: with VolSync v0.17.7's
// CRDs (no nfs mover volumes) an NFS policy makes readiness fail with the reason and the
// generator write nothing; installing v0.17.11's CRDs makes both work again without a restart.

const skip = requireOrSkip(["etcd", "kube-apiserver"]);
const nfs = { server: "nas.local", path: "/backups/kopia", mountPath: "repository" };

describe("VolSync CRD capabilities against a real API server", { skip }, () => {
  let env: KubeEnvironment;
  let cluster: TestCluster;
  let kube: KubeClients;
  let namespace: string;
  let policy: Policy;
  let support: VolSyncSupport;
  const log = createRecordingLogger();
  let workDir: string;
  let guardian: RunningGuardian | undefined;

  before(async () => {
    env = await startKubeEnvironment({ volSyncVersion: "v0.17.7" });
    cluster = env.cluster;
    kube = env.kube;
    namespace = await createNamespace(cluster);
    policy = { ...env.policy, nfs };
    support = createVolSyncSupport({ ...defaultSettings.volSyncCapabilities, objects: kube.objects, policy, log, retryDelayMs: 50 });
    await support.start();
    workDir = await mkdtemp(path.join(tmpdir(), "pvc-guardian-capabilities-"));
  });

  after(async () => {
    await guardian?.stop();
    await support?.stop();
    await env?.stop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  const signal = () => AbortSignal.timeout(8_000);
  const errorLines = () => log.entries.filter((line) => line.level === "error");

  function generatorWith(policySupport: VolSyncSupport["support"]) {
    const events = createPvcEventRecorder(kube.objects, { reportingController: "pvc-guardian", reportingInstance: "test" });
    return createAdmissionGenerator({
      ...admissionGeneratorSettings,
      objects: kube.objects,
      policy,
      log: createRecordingLogger(),
      metrics: countingMetrics(),
      events,
      policySupport,
    });
  }

  /** The detailed readiness, served on the ops port. */
  async function getReadyz(opsPort: number): Promise<{ status: number; body: string }> {
    const answer = await fetch(`http://127.0.0.1:${opsPort}/readyz?verbose`);
    return { status: answer.status, body: await answer.text() };
  }

  it("reads the v0.17.7 CRDs as lacking nfs mover volumes and judges the NFS policy unsupported, logging it once", async () => {
    assert.deepEqual(support.capabilities(), {
      known: true,
      hasNfsMoverVolumes: false,
      crdsWithoutNfs: ["replicationsources.volsync.backube", "replicationdestinations.volsync.backube"],
    });
    const judged = support.support();
    assert.equal(judged.supported, false);
    assert.match(judged.supported ? "" : judged.problem, /perfectra1n\/volsync v0\.17\.11\), or remove repository\.nfs from the policy$/);
    assert.equal(errorLines().length, 1, JSON.stringify(log.entries));
    assert.match(errorLines()[0]!.message ?? "", /cannot back up with this policy: the policy names an NFS repository/);
  });

  it("judges a policy without NFS supported on the same CRDs", async () => {
    const plain = createVolSyncSupport({ ...defaultSettings.volSyncCapabilities, objects: kube.objects, policy: {}, log: createRecordingLogger() });
    await plain.start();
    try {
      assert.equal(plain.capabilities().known, true);
      assert.deepEqual(plain.support(), { supported: true });
    } finally {
      await plain.stop();
    }
  });

  it("treats CRDs it cannot read as supported, with a warning", async () => {
    const warned = createRecordingLogger();
    const forbidden = failingObjects(kube.objects, (verb, kind) => verb === "list" && kind === "CustomResourceDefinition");
    const blind = createVolSyncSupport({
      ...defaultSettings.volSyncCapabilities,
      objects: forbidden,
      policy,
      log: warned,
      retryDelayMs: 50,
      maxRetryDelayMs: 200,
    });
    await blind.start();
    try {
      assert.equal(blind.capabilities().known, false);
      assert.deepEqual(blind.support(), { supported: true });
      assert.ok(
        warned.entries.some((line) => line.level === "warn" && /capabilities unknown/.test(line.message ?? "")),
        JSON.stringify(warned.entries),
      );
      assert.equal(warned.entries.filter((line) => line.level === "error").length, 0);
    } finally {
      await blind.stop();
    }
  });

  it("writes nothing on the restore path, and the validating handler denies with the reason", async () => {
    const generator = generatorWith(support.support);
    const pvc = pvcObject(namespace, "media");
    const result = await generator.generate({ pvc, evaluation: protectedEvaluation(pvc, policy, "restore"), restoring: true }, signal());
    assert.equal(result.ok, false);
    assert.match(result.ok ? "" : result.message, /the restore objects for PVC .*\/media were not written, because the policy names an NFS repository/);

    const handlers = createReviewHandlers({
      policy,
      catalog: { lookup: () => ({ readable: true, snapshots: [SNAPSHOT], refreshedAtMs: Date.now() }) },
      generator,
    });
    const restoringPvc = pvcObject(namespace, "media-via-handler");
    restoringPvc.spec = {
      ...restoringPvc.spec,
      dataSourceRef: { apiGroup: "volsync.backube", kind: "ReplicationDestination", name: "media-via-handler-backup" },
    };
    const outcome = await answerReview(handlers.validate, pvcCreateReviewOf(restoringPvc, { uid: "uid-nfs" }), { signal: signal(), deadlineMs: 8_000 });
    const response = outcome.review.response as { allowed: boolean; status?: { message?: string } };
    assert.equal(response.allowed, false);
    assert.match(response.status?.message ?? "", /no nfs mover volumes .* upgrade VolSync/);

    for (const name of ["media", "media-via-handler"]) {
      assert.equal(await kube.objects.get(REPLICATION_DESTINATIONS, namespace, `${name}-backup`), undefined, `${name}: no RD, pruned or not`);
      assert.equal(await kube.objects.get(SECRETS, namespace, `volsync-${name}`), undefined, `${name}: no Secret`);
    }
    const event = await eventually("a BackupPolicyUnsupported event", async () => {
      const list = await kube.objects.list(EVENTS, { namespace });
      return list.items.find((e) => e["reason"] === "BackupPolicyUnsupported" && (e["regarding"] as { name: string }).name === "media");
    });
    assert.equal(event["type"], "Warning");
    assert.match(String(event["note"]), /remove repository\.nfs from the policy/);
  });

  it("writes nothing on the fresh path and warns", async () => {
    const pvc = pvcObject(namespace, "fresh-media");
    const result = await generatorWith(support.support).generate({ pvc, evaluation: protectedEvaluation(pvc, policy, "fresh"), restoring: false }, signal());
    assert.equal(result.ok, true);
    assert.equal(result.ok && result.warnings.length, 1);
    assert.match(result.ok ? result.warnings[0]! : "", /no backup objects were written for PVC .*\/fresh-media, because .* upgrade VolSync/);
    assert.equal(await kube.objects.get(REPLICATION_DESTINATIONS, namespace, "fresh-media-backup"), undefined);
    assert.equal(await kube.objects.get(SECRETS, namespace, "volsync-fresh-media"), undefined);
  });

  it("fails pvc-guardian's readiness check volsync-crds with the reason", async () => {
    const ca = await createCertificateAuthority(workDir, { commonName: "capabilities test CA" });
    const serving = await issueServerCertificate(ca, workDir, { commonName: "127.0.0.1", ipAddresses: ["127.0.0.1"] });
    const policyFile = path.join(workDir, "policy.yaml");
    await writeFile(
      policyFile,
      // A short reconcile interval, so the guardian's passes in this test come quickly.
      `repository: { nfs: { server: ${nfs.server}, path: ${nfs.path} } }\nsourceSecret: ${JSON.stringify(policy.sourceSecret)}\nreconcile: { interval: 2s }\n`,
    );
    const ownNamespace = await createNamespace(cluster);
    const loaded = loadConfig({
      PVC_GUARDIAN_POLICY_FILE: policyFile,
      PVC_GUARDIAN_TLS_CERT_FILE: serving.certPath,
      PVC_GUARDIAN_TLS_KEY_FILE: serving.keyPath,
      PVC_GUARDIAN_LISTEN_HOST: "127.0.0.1",
      PVC_GUARDIAN_PORT: "0",
      PVC_GUARDIAN_OPS_PORT: "0",
      PVC_GUARDIAN_NAMESPACE: ownNamespace,
      PVC_GUARDIAN_KUBERNETES: "kubeconfig",
      PVC_GUARDIAN_KUBECONFIG: cluster.kubeconfigPath,
    });
    assert.ok(loaded.ok, loaded.ok ? "" : loaded.problems.join("; "));
    loaded.config.shutdown.drainDelayMs = 0;
    guardian = await startGuardian(loaded.config, pino({ level: "silent" }));
    const readyz = await getReadyz(guardian.opsPort);
    assert.equal(readyz.status, 503, readyz.body);
    assert.match(readyz.body, /\[-\]volsync-crds failed: the policy names an NFS repository \(repository\.nfs: nas\.local:\/backups\/kopia\)/);
  });

  it("becomes supported and ready again when the v0.17.11 CRDs are installed, without a restart", async () => {
    await installCrds(cluster, { volSyncVersion: "v0.17.11", certManager: false });
    await eventually("the watch to see the new CRDs", async () => (support.support().supported ? true : undefined));
    assert.deepEqual(support.capabilities(), { known: true, hasNfsMoverVolumes: true, crdsWithoutNfs: [] });
    assert.equal(errorLines().length, 1, "no second error line");
    assert.ok(log.entries.some((line) => line.level === "info" && /now support the policy/.test(line.message ?? "")));

    assert.ok(guardian, "started by the previous test");
    const opsPort = guardian.opsPort;
    const readyz = await eventually("/readyz to pass", async () => {
      const answer = await getReadyz(opsPort);
      return answer.status === 200 ? answer : undefined;
    });
    assert.match(readyz.body, /\[\+\]volsync-crds ok/);

    // The apiserver applies a changed CRD schema shortly after storing it; the strict create is
    // retried until then.
    const pvc = pvcObject(namespace, "media-later");
    const result = await eventually("the restore objects to be written", async () => {
      const attempt = await generatorWith(support.support).generate(
        { pvc, evaluation: protectedEvaluation(pvc, policy, "restore"), restoring: true },
        signal(),
      );
      return attempt.ok ? attempt : undefined;
    });
    assert.equal(result.ok, true);
    const rd = await kube.objects.get(REPLICATION_DESTINATIONS, namespace, "media-later-backup");
    assert.deepEqual((rd?.["spec"] as { kopia: { moverVolumes: unknown } }).kopia.moverVolumes, [
      { mountPath: "repository", volumeSource: { nfs: { server: "nas.local", path: "/backups/kopia" } } },
    ]);
  });
});

// Its own cluster: the ServiceAccount and RBAC objects stay out of the suite above.
describe("VolSync CRD capabilities read as pvc-guardian's ServiceAccount", { skip }, () => {
  let cluster: TestCluster;
  let kube: KubeClients;
  let workDir: string;
  const policy = { nfs };

  before(async () => {
    cluster = await startTestCluster();
    await installCrds(cluster, { volSyncVersion: "v0.17.7", certManager: false });
    kube = createKubeClients({ ...kubeClientSettings, kubeconfigPath: cluster.kubeconfigPath });
    workDir = await mkdtemp(path.join(tmpdir(), "pvc-guardian-capabilities-rbac-"));
  });

  after(async () => {
    kube?.close();
    await cluster?.stop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it("reads the CRDs with no more than the shipped ClusterRole grants", async () => {
    // A real ServiceAccount bound to manifests/cluster-role.yaml, so the resourceNames rule is
    // checked against the list and watch requests the adapter really sends.
    const saNamespace = await createNamespace(cluster);
    const clusterRole = structuredClone(findObject(readObjects(manifestsDir), "ClusterRole", "pvc-guardian"));
    clusterRole.metadata = { name: `pvc-guardian-${saNamespace}` };
    const writes: [string, unknown][] = [
      [`/api/v1/namespaces/${saNamespace}/serviceaccounts`, { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "pvc-guardian" } }],
      ["/apis/rbac.authorization.k8s.io/v1/clusterroles", clusterRole],
      [
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        {
          apiVersion: "rbac.authorization.k8s.io/v1",
          kind: "ClusterRoleBinding",
          metadata: { name: clusterRole.metadata.name },
          roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: clusterRole.metadata.name },
          subjects: [{ kind: "ServiceAccount", name: "pvc-guardian", namespace: saNamespace }],
        },
      ],
    ];
    for (const [apiPath, body] of writes) {
      const created = await requestJson(cluster, "POST", apiPath, { body });
      assert.equal(created.status, 201, JSON.stringify(created.body));
    }
    const tokenRequest = await requestJson<{ status?: { token?: string } }>(
      cluster,
      "POST",
      `/api/v1/namespaces/${saNamespace}/serviceaccounts/pvc-guardian/token`,
      {
        body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: {} },
      },
    );
    const token = tokenRequest.body?.status?.token;
    assert.ok(token, JSON.stringify(tokenRequest.body));
    // Without a name, the rule must not let it list CRDs at all.
    const unnamed = await requestJson(cluster, "GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", { token });
    assert.equal(unnamed.status, 403);

    const kubeconfigPath = path.join(workDir, "service-account.kubeconfig");
    await writeKubeconfig(kubeconfigPath, cluster, { name: "pvc-guardian", token });
    const asServiceAccount = createKubeClients({ ...kubeClientSettings, kubeconfigPath });
    const warned = createRecordingLogger();
    const scoped = createVolSyncSupport({ ...defaultSettings.volSyncCapabilities, objects: asServiceAccount.objects, policy, log: warned, retryDelayMs: 50 });
    try {
      await scoped.start();
      assert.deepEqual(scoped.capabilities(), {
        known: true,
        hasNfsMoverVolumes: false,
        crdsWithoutNfs: ["replicationsources.volsync.backube", "replicationdestinations.volsync.backube"],
      });
      // The watch is allowed too: it would have logged a retry otherwise.
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.deepEqual(
        warned.entries.filter((line) => line.level === "warn"),
        [],
      );
    } finally {
      await scoped.stop();
      asServiceAccount.close();
    }
  });
});
