// More than one repository, end to end: pvc-guardian as the real webhook of a real API server,
// two repositories written by the real kopia with different passwords, and namespaces mapped to
// each by name, by label selector and by default. Each namespace's Secret holds only its own
// repository's credentials, each decision comes from the right catalog, and one repository
// unreadable denies only the namespaces it serves.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { pino } from "pino";
import { createCertificateAuthority, issueServerCertificate, type CertificateAuthority } from "../../../certs/pki.ts";
import { requireOrSkip } from "../../harness/binaries.ts";
import { startTestCluster, type TestCluster } from "../../harness/cluster.ts";
import { installCrds } from "../../harness/crds.ts";
import { guardianTestEnvironment, registerGuardianWebhooks } from "../../harness/guardian-webhooks.ts";
import { createKopiaRepository, findKopiaBinary, type KopiaRepository } from "../../harness/kopia.ts";
import { createNamespace, requestJson } from "../../harness/kube-objects.ts";
import { eventually, type EventuallyOptions } from "../../support/eventually.ts";
import { loadConfig } from "../../../webhook/config.ts";
import { startGuardian, type RunningGuardian } from "../../../webhook/main.ts";
import { pvcObject } from "../../support/pvc-object.ts";

const skip = requireOrSkip(["kube-apiserver", "etcd", "kopia"]);

// The guardian's reconciler and catalog refresh run every second here.
const withinSeconds: EventuallyOptions = { timeoutMs: 20_000, intervalMs: 200 };

describe("two repositories, namespaces mapped to each, on a real API server", { skip }, () => {
  let workDir: string;
  let cluster: TestCluster;
  let ca: CertificateAuthority;
  let shared: KopiaRepository;
  let finance: KopiaRepository;
  let guardian: RunningGuardian | undefined;

  before(async () => {
    workDir = await mkdtemp(path.join(tmpdir(), "pvc-guardian-repositories-"));
    ca = await createCertificateAuthority(path.join(workDir, "pki"), { commonName: "pvc-guardian repositories CA" });
    const serving = await issueServerCertificate(ca, path.join(workDir, "pki"), { name: "serving", commonName: "pvc-guardian", ipAddresses: ["127.0.0.1"] });
    cluster = await startTestCluster();
    await installCrds(cluster, { certManager: false });
    for (const name of ["pvc-guardian", "volsync-system", "ns-shared", "ns-finance"]) await createNamespace(cluster, name);
    await createNamespace(cluster, "ns-team", { team: "a" });

    const binary = findKopiaBinary();
    assert.ok("path" in binary);
    shared = await createKopiaRepository({ binaryPath: binary.path, layout: "create", password: "shared password" });
    finance = await createKopiaRepository({ binaryPath: binary.path, layout: "create", password: "finance password" });
    const data = await shared.makeSourceDir("data", { "a.txt": "data" });
    // Each namespace's backup sits in the repository that serves it, except ns-team's, which sits
    // only in the shared one: served by finance, ns-team must come up fresh.
    await shared.snapshot(data, { source: "app-backup@ns-shared:/data" });
    await shared.snapshot(data, { source: "app-backup@ns-team:/data" });
    await finance.snapshot(await finance.makeSourceDir("data", { "b.txt": "ledger" }), { source: "app-backup@ns-finance:/data" });

    for (const [name, repository] of [
      ["kopia-credentials", shared],
      ["finance-credentials", finance],
    ] as const) {
      const created = await requestJson(cluster, "POST", "/api/v1/namespaces/volsync-system/secrets", {
        body: { apiVersion: "v1", kind: "Secret", metadata: { name, namespace: "volsync-system" }, stringData: { KOPIA_PASSWORD: repository.password } },
      });
      assert.equal(created.status, 201);
    }

    const policyFile = path.join(workDir, "policy.yaml");
    await writeFile(
      policyFile,
      [
        "catalog: { refreshInterval: 1s, freshnessBound: 4s, missRefreshTimeout: 500ms }",
        "reconcile: { interval: 1s, leaseDuration: 15s }",
        "repositories:",
        "  - name: finance",
        `    path: ${finance.rootPath}`,
        `    passwordFile: ${finance.passwordFile}`,
        "    sourceSecret: { namespace: volsync-system, name: finance-credentials }",
        "    namespaces: [ns-finance]",
        "    namespaceSelector: { matchLabels: { team: a } }",
        "",
      ].join("\n"),
    );
    const loaded = loadConfig(
      guardianTestEnvironment({ policyFile, serving, repository: shared, kubeconfigPath: cluster.kubeconfigPath, podName: "pvc-guardian-repositories" }),
    );
    assert.ok(loaded.ok, loaded.ok ? "" : loaded.problems.join("; "));
    loaded.config.shutdown.drainDelayMs = 0;
    guardian = await startGuardian(loaded.config, pino({ level: "silent" }));
    await registerGuardianWebhooks(cluster, guardian.port, ca.certPem);
  });

  after(async () => {
    await guardian?.stop();
    await cluster?.stop();
    await shared?.dispose();
    await finance?.dispose();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  async function createPvc(namespace: string, name: string, dryRun = false) {
    const response = await requestJson<Record<string, unknown>>(
      cluster,
      "POST",
      `/api/v1/namespaces/${namespace}/persistentvolumeclaims${dryRun ? "?dryRun=All" : ""}`,
      { body: pvcObject(namespace, name) },
    );
    return { status: response.status, message: String(response.body?.["message"] ?? ""), body: response.body ?? {} };
  }

  const dataSourceRefOf = (body: Record<string, unknown>) => (body["spec"] as { dataSourceRef?: { name?: string } }).dataSourceRef?.name;

  it("decides each namespace from the catalog of the repository that serves it", async () => {
    const sharedPvc = await createPvc("ns-shared", "app");
    assert.equal(sharedPvc.status, 201, sharedPvc.message);
    assert.equal(dataSourceRefOf(sharedPvc.body), "app-backup", "restored from the shared repository");
    const financePvc = await createPvc("ns-finance", "app");
    assert.equal(financePvc.status, 201, financePvc.message);
    assert.equal(dataSourceRefOf(financePvc.body), "app-backup", "restored from the finance repository, listed by name");
    const teamPvc = await createPvc("ns-team", "app");
    assert.equal(teamPvc.status, 201, teamPvc.message);
    assert.equal(dataSourceRefOf(teamPvc.body), undefined, "fresh: chosen by label, the finance repository holds nothing for it");
  });

  it("gives each namespace only its own repository's credentials", async () => {
    const passwordIn = (namespace: string) =>
      eventually(
        `the Secret clone in ${namespace}`,
        async () => {
          const secret = await requestJson<{ data?: Record<string, string> }>(cluster, "GET", `/api/v1/namespaces/${namespace}/secrets/volsync-app`);
          const encoded = secret.status === 200 ? secret.body?.data?.["KOPIA_PASSWORD"] : undefined;
          return encoded === undefined ? undefined : Buffer.from(encoded, "base64").toString();
        },
        withinSeconds,
      );
    assert.equal(await passwordIn("ns-shared"), "shared password");
    assert.equal(await passwordIn("ns-finance"), "finance password");
    assert.equal(await passwordIn("ns-team"), "finance password");
  });

  it("says which repository answered, in the metrics", async () => {
    assert.ok(guardian);
    const metrics = await (await fetch(`http://127.0.0.1:${guardian.opsPort}/metrics`)).text();
    assert.match(metrics, /pvc_guardian_catalog_refreshes_total\{repository="finance",result="success"\} [1-9]/);
    assert.match(metrics, /pvc_guardian_catalog_refreshes_total\{repository="default",result="success"\} [1-9]/);
  });

  it("denies only the namespaces of a repository that cannot be read", async () => {
    const hidden = `${finance.rootPath}.unmounted`;
    await rename(finance.rootPath, hidden);
    try {
      const denied = await eventually(
        "the finance namespaces to be denied",
        async () => {
          const attempt = await createPvc("ns-finance", "other", true);
          return attempt.status === 201 ? undefined : attempt;
        },
        withinSeconds,
      );
      assert.equal(denied.status, 403);
      assert.match(denied.message, /cannot tell whether the backup repository holds data/);
      assert.equal((await createPvc("ns-team", "other", true)).status, 403, "chosen by label, served by the same repository");
      assert.equal((await createPvc("ns-shared", "other", true)).status, 201, "the shared repository still answers");
    } finally {
      await rename(hidden, finance.rootPath);
    }
  });
});
