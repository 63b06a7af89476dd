// The seed architecture's scenarios end to end: a real kube-apiserver calling pvc-guardian as a
// real webhook (URL clientConfig with caBundle, and the shipped manifests' selectors and
// matchConditions), pvc-guardian started through startGuardian with its reconciler and sweeper,
// and a Kopia repository made by the real kopia. Plus pvc-guardian down, break-glass and dormant.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { pino } from "pino";
import { createCertificateAuthority, issueServerCertificate, type CertificateAuthority, type IssuedCertificate } from "../../../certs/pki.ts";
import { requireOrSkip } from "../../harness/binaries.ts";
import { startTestCluster, type TestCluster } from "../../harness/cluster.ts";
import { installCrds } from "../../harness/crds.ts";
import { createKopiaRepository, findKopiaBinary, kopiaSkip, type KopiaRepository } from "../../harness/kopia.ts";
import { createNamespace, finishMover, requestJson, setPvcPhase } from "../../harness/kube-objects.ts";
import { eventually, type EventuallyOptions } from "../../support/eventually.ts";
import { callHttps, postJson } from "../../support/https-call.ts";
import { pvcCreateReview } from "../../support/pvc-review.ts";
import { guardianTestEnvironment, registerGuardianWebhooks } from "../../harness/guardian-webhooks.ts";
import { loadConfig } from "../../../webhook/config.ts";
import { startGuardian, type RunningGuardian } from "../../../webhook/main.ts";
import { pvcObject } from "../../support/pvc-object.ts";

type Status = { status: number; message: string };

const quietLog = pino({ level: "silent" });

// What the scenarios wait for comes from the guardian's loops (every second here) and from the API
// server picking up webhook configurations; a request that fails meanwhile is tried again.
const withinSeconds: EventuallyOptions = { timeoutMs: 20_000, intervalMs: 200, isRetryable: () => true };

describe("the four scenarios with pvc-guardian as a real webhook", { skip: requireOrSkip(["etcd", "kube-apiserver"]) || kopiaSkip() }, () => {
  let cluster: TestCluster;
  let repository: KopiaRepository;
  let workDir: string;
  let ca: CertificateAuthority;
  let serving: IssuedCertificate;
  let guardian: RunningGuardian | undefined;
  let namespace: string;
  let hiddenRepositoryPath: string;

  async function startWith(policy: { dormant: boolean }): Promise<void> {
    const policyFile = path.join(workDir, `policy-${policy.dormant ? "dormant" : "active"}.yaml`);
    await writeFile(
      policyFile,
      [
        // Short delays so the scenarios run in seconds; everything else is the shipped default.
        "firstBackupDelay: 3s",
        "catalog: { refreshInterval: 1s, freshnessBound: 4s, missRefreshTimeout: 500ms }",
        "reconcile: { interval: 1s, leaseDuration: 15s }",
        'sweep: { schedule: "* * * * *", gracePeriod: 1s }',
        'readApi: { audience: pvc-guardian, allowedServiceAccounts: ["system:serviceaccount:pvc-guardian:auditor"] }',
        `dormant: ${policy.dormant}`,
        "",
      ].join("\n"),
    );
    const loaded = loadConfig(
      guardianTestEnvironment({ policyFile, serving, repository, kubeconfigPath: cluster.kubeconfigPath, podName: "pvc-guardian-scenarios" }),
    );
    assert.ok(loaded.ok, loaded.ok ? "" : loaded.problems.join("; "));
    // No Service sends traffic here, so there is nothing to wait for when stopping.
    loaded.config.shutdown.drainDelayMs = 0;
    guardian = await startGuardian(loaded.config, quietLog);
    await registerWebhooks(guardian.port);
  }

  async function stopGuardian(): Promise<void> {
    await guardian?.stop();
    guardian = undefined;
  }

  const registerWebhooks = (port: number) => registerGuardianWebhooks(cluster, port, ca.certPem);

  async function createPvc(
    name: string,
    labels: Record<string, string>,
    options: { ns?: string; dryRun?: boolean } = {},
  ): Promise<Status & { body: Record<string, unknown> }> {
    const ns = options.ns ?? namespace;
    const response = await requestJson<Record<string, unknown>>(
      cluster,
      "POST",
      `/api/v1/namespaces/${ns}/persistentvolumeclaims${options.dryRun ? "?dryRun=All" : ""}`,
      { body: pvcObject(ns, name, labels) },
    );
    return { status: response.status, message: String(response.body?.["message"] ?? ""), body: response.body ?? {} };
  }

  /** Creates an hourly PVC, trying again until the API server admits it. */
  function createPvcOnceAdmitted(name: string, when: string) {
    return eventually(
      `PVC ${name} to be admitted ${when}`,
      async () => {
        const attempt = await createPvc(name, { backup: "hourly" });
        return attempt.status === 201 ? attempt : undefined;
      },
      withinSeconds,
    );
  }

  async function getObject(apiPath: string): Promise<Record<string, unknown> | undefined> {
    const response = await requestJson<Record<string, unknown>>(cluster, "GET", apiPath);
    return response.status === 200 ? response.body : undefined;
  }

  const volsync = (plural: string, name: string) => `/apis/volsync.backube/v1alpha1/namespaces/${namespace}/${plural}/${name}`;
  const secretPath = (name: string) => `/api/v1/namespaces/${namespace}/secrets/${name}`;

  before(async () => {
    workDir = await mkdtemp(path.join(tmpdir(), "pvc-guardian-scenarios-"));
    ca = await createCertificateAuthority(path.join(workDir, "pki"), { commonName: "pvc-guardian scenarios CA" });
    serving = await issueServerCertificate(ca, path.join(workDir, "pki"), { name: "serving", commonName: "pvc-guardian", ipAddresses: ["127.0.0.1"] });
    cluster = await startTestCluster();
    await installCrds(cluster, { certManager: false });
    await createNamespace(cluster, "pvc-guardian");
    await createNamespace(cluster, "volsync-system");
    await createNamespace(cluster, "longhorn-system");
    namespace = await createNamespace(cluster);

    const binary = findKopiaBinary();
    assert.ok("path" in binary);
    repository = await createKopiaRepository({ binaryPath: binary.path, layout: "create" });
    hiddenRepositoryPath = `${repository.rootPath}.unmounted`;
    const source = await repository.makeSourceDir("restored", { "db.sqlite": "precious" });
    // The identity VolSync's mover writes for RS/RD `restored-backup` in this namespace.
    await repository.snapshot(source, { source: `restored-backup@${namespace}:/data` });

    const sourceSecret = await requestJson(cluster, "POST", "/api/v1/namespaces/volsync-system/secrets", {
      body: {
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name: "kopia-credentials", namespace: "volsync-system" },
        stringData: { KOPIA_PASSWORD: repository.password, KOPIA_REPOSITORY: "filesystem:///repository" },
      },
    });
    assert.equal(sourceSecret.status, 201);
    await startWith({ dormant: false });
  });

  after(async () => {
    await stopGuardian();
    await cluster?.stop();
    await repository?.dispose();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it("1. fresh deploy: admits the PVC without dataSourceRef, writes a paused RD, the Secret once stored, and the RS after the delay", async () => {
    const created = await createPvc("fresh-app", { backup: "hourly" });
    assert.equal(created.status, 201, created.message);
    assert.equal((created.body["spec"] as { dataSourceRef?: unknown }).dataSourceRef, undefined);

    // The credentials come from the leader's reconciler once the API server holds the PVC.
    const secret = await eventually("the Secret clone", () => getObject(secretPath("volsync-fresh-app")), withinSeconds);
    assert.equal(Buffer.from((secret["data"] as Record<string, string>)["KOPIA_PASSWORD"]!, "base64").toString(), repository.password);
    const destination = await getObject(volsync("replicationdestinations", "fresh-app-backup"));
    assert.ok(destination, "ReplicationDestination fresh-app-backup was generated at admission");
    assert.equal((destination["spec"] as { paused?: boolean }).paused, true);
    assert.equal(await getObject(volsync("replicationsources", "fresh-app-backup")), undefined, "no RS before the PVC is Bound");

    const boundAtMs = Date.now();
    await setPvcPhase(cluster, namespace, "fresh-app", "Bound");
    const source = await eventually("the ReplicationSource", () => getObject(volsync("replicationsources", "fresh-app-backup")), withinSeconds);
    assert.ok(Date.now() - boundAtMs >= 3_000, "not before firstBackupDelay (3s) after Bound");
    const spec = source["spec"] as { sourcePVC: string; kopia: { username: string; hostname: string } };
    assert.equal(spec.sourcePVC, "fresh-app");
    assert.deepEqual([spec.kopia.username, spec.kopia.hostname], ["fresh-app-backup", namespace]);
  });

  it("2. disaster recovery: injects dataSourceRef to the RD when snapshots exist, and the RD is active", async () => {
    const created = await createPvc("restored", { backup: "daily" });
    assert.equal(created.status, 201, created.message);
    assert.deepEqual((created.body["spec"] as { dataSourceRef?: unknown }).dataSourceRef, {
      apiGroup: "volsync.backube",
      kind: "ReplicationDestination",
      name: "restored-backup",
    });
    const destination = await getObject(volsync("replicationdestinations", "restored-backup"));
    assert.ok(destination);
    const spec = destination["spec"] as { paused?: boolean; trigger: { manual: string }; kopia: { username: string; hostname: string } };
    assert.notEqual(spec.paused, true, "the RD restores: it is not paused");
    assert.equal(spec.trigger.manual, "restore-once");
    assert.deepEqual([spec.kopia.username, spec.kopia.hostname], ["restored-backup", namespace]);
    // Pinned to the snapshot as the real kopia lists it for that identity, text for text, so the
    // mover's own comparison selects it.
    type Listed = {
      id: string;
      startTime: string;
      source: { userName: string; host: string };
      rootEntry: { summ: { files: number; symlinks: number; dirs: number; size: number } };
    };
    const listed = (JSON.parse(await repository.listSnapshotsJson()) as Listed[]).filter(
      (entry) => entry.source.userName === "restored-backup" && entry.source.host === namespace,
    );
    assert.equal(listed.length, 1);
    assert.equal((spec.kopia as { restoreAsOf?: string }).restoreAsOf, listed[0]!.startTime);
    const annotations = (destination["metadata"] as { annotations?: Record<string, string> }).annotations ?? {};
    assert.equal(annotations["volsync.backup/restore-snapshot-id"], listed[0]!.id);
    const summ = listed[0]!.rootEntry.summ;
    assert.deepEqual(JSON.parse(annotations["volsync.backup/restore-snapshot-stats"] ?? "null"), {
      fileCount: summ.files,
      dirCount: summ.dirs,
      totalSize: summ.size,
      symlinkCount: summ.symlinks ?? 0,
    });

    // The mover finishes: the real kopia restores the pinned snapshot, and its Restored line goes
    // into the RD's status as VolSync's controller keeps it. The leader verifies it.
    const restoreDir = await mkdtemp(path.join(tmpdir(), "pvc-guardian-restore-"));
    try {
      const restored = await repository.run(["snapshot", "restore", listed[0]!.id, restoreDir]);
      const line = `${restored.stdout}\n${restored.stderr}`.split("\n").find((l) => l.startsWith("Restored "));
      assert.ok(line, "kopia printed its Restored line");
      await finishMover(cluster, namespace, "restored-backup", { result: "Successful", logs: `INFO: Executing restore command...\n${line}` });
      const rdPath = volsync("replicationdestinations", "restored-backup");
      const verdict = await eventually(
        "the restore verdict",
        async () => {
          const live = await getObject(rdPath);
          return (live?.["metadata"] as { annotations?: Record<string, string> } | undefined)?.annotations?.["volsync.backup/restore-verdict"];
        },
        withinSeconds,
      );
      assert.equal(verdict, "verified");
    } finally {
      await rm(restoreDir, { recursive: true, force: true });
    }
  });

  it("reports leadership, reconcile passes, API server requests and admission answers by code on the metrics port", async () => {
    const text = await (await fetch(`http://127.0.0.1:${guardian!.opsPort}/metrics`)).text();
    assert.match(text, /^pvc_guardian_leader\{name="pvc-guardian-leader"\} 1$/m);
    assert.match(text, /^pvc_guardian_reconcile_duration_seconds_count [1-9]\d*$/m);
    assert.match(text, /^pvc_guardian_kube_requests_total\{verb="get",code="200"\} [1-9]\d*$/m);
    assert.match(text, /^pvc_guardian_kube_requests_total\{verb="watch",code="200"\} [1-9]\d*$/m);
    assert.match(text, /^pvc_guardian_kube_requests_total\{verb="(create|patch)",code="20[01]"\} [1-9]\d*$/m);
    assert.match(text, /^pvc_guardian_admission_responses_total\{webhook="validate",code="200"\} [1-9]\d*$/m);
    assert.match(text, /^pvc_guardian_admission_requests_in_flight\{webhook="validate"\} 0$/m);
  });

  it("a forged review sent straight to the port writes no credentials and replaces no RD", async () => {
    assert.ok(guardian);
    const forge = (uid: string, ns: string, name: string, spec: Record<string, unknown> = {}) =>
      pvcCreateReview({ uid, name, namespace: ns, labels: { backup: "hourly" }, spec });
    const post = async (body: unknown) => {
      const answer = await postJson(ca.certPem, guardian!.port, "/validate-v1-pvc", body);
      return { status: answer.status, review: JSON.parse(answer.text) as { response: { allowed: boolean; status?: { message?: string } } } };
    };
    const attackerNs = `${namespace}-attacker`;
    await createNamespace(cluster, attackerNs);
    // A PVC no API server ever stored: whatever the answer, the repository's credentials stay put.
    const loot = await post(forge("forged-1", attackerNs, "loot"));
    assert.equal(loot.status, 200);
    await sleep(2_500); // past the reconciler's debounce: it acts on stored PVCs only
    assert.equal(await getObject(`/api/v1/namespaces/${attackerNs}/secrets/volsync-loot`), undefined, "no credentials for a forged review");

    // A forged restore review for a PVC that exists changes nothing about its RD.
    const rdPath = volsync("replicationdestinations", "restored-backup");
    const before = await getObject(rdPath);
    const ref = { apiGroup: "volsync.backube", kind: "ReplicationDestination", name: "restored-backup" };
    const replay = await post(forge("forged-2", namespace, "restored", { dataSourceRef: ref }));
    assert.equal(replay.review.response.allowed, false);
    assert.match(replay.review.response.status?.message ?? "", /already exists, so its ReplicationDestination is left as it is/);
    const after = await getObject(rdPath);
    const uidOf = (o: Record<string, unknown> | undefined) => (o?.["metadata"] as { uid?: string } | undefined)?.uid;
    const versionOf = (o: Record<string, unknown> | undefined) => (o?.["metadata"] as { resourceVersion?: string } | undefined)?.resourceVersion;
    assert.equal(uidOf(after), uidOf(before));
    assert.equal(versionOf(after), versionOf(before));
  });

  it("serves the authenticated read API on the webhook port, checking tokens the apiserver minted", async () => {
    assert.ok(guardian);
    const account = await requestJson(cluster, "POST", "/api/v1/namespaces/pvc-guardian/serviceaccounts", {
      body: { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "auditor", namespace: "pvc-guardian" } },
    });
    assert.ok([201, 409].includes(account.status), JSON.stringify(account.body));
    const mint = async (audience: string): Promise<string> => {
      const minted = await requestJson<{ status: { token: string } }>(cluster, "POST", "/api/v1/namespaces/pvc-guardian/serviceaccounts/auditor/token", {
        body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: { audiences: [audience], expirationSeconds: 600 } },
      });
      assert.equal(minted.status, 201, JSON.stringify(minted.body));
      assert.ok(minted.body);
      return minted.body.status.token;
    };
    const get = async (route: string, token?: string) => {
      const answer = await callHttps(ca.certPem, guardian!.port, { path: route, headers: token ? { authorization: `Bearer ${token}` } : {} });
      return { status: answer.status, body: JSON.parse(answer.text) as Record<string, unknown> };
    };

    assert.equal((await get("/v1/audit")).status, 401);
    assert.equal((await get("/v1/audit", await mint("someone-else"))).status, 401);
    const token = await mint("pvc-guardian");
    const backups = await get(`/v1/backups/${namespace}/restored`, token);
    assert.equal(backups.status, 200, JSON.stringify(backups.body));
    assert.match(JSON.stringify(backups.body), /restore/);
    const audit = await get("/v1/audit", token);
    assert.equal(audit.status, 200, JSON.stringify(audit.body));
    assert.match(JSON.stringify(audit.body), /fresh-app/);
  });

  it("3. repository unreadable: denies protected PVCs with the reason, leaves the rest alone, and admits once readable", async () => {
    await rename(repository.rootPath, hiddenRepositoryPath);
    try {
      const denied = await eventually(
        "protected PVCs to be denied",
        async () => {
          const attempt = await createPvc("while-unreadable", { backup: "hourly" }, { dryRun: true });
          return attempt.status === 201 ? undefined : attempt;
        },
        withinSeconds,
      );
      assert.equal(denied.status, 403);
      const real = await createPvc("while-unreadable", { backup: "hourly" });
      assert.equal(real.status, 403);
      assert.match(real.message, /pvc-guardian blocked PVC .*while-unreadable .*cannot tell whether the backup repository holds data/);
      assert.match(real.message, /Kopia identity while-unreadable-backup@/);

      assert.equal((await createPvc("scratch", {})).status, 201, "an unlabelled PVC is unaffected");
      assert.equal((await createPvc("typo", { backup: "Hourly" })).status, 201, "an unknown tier is not gated");
      assert.equal((await createPvc("storage-own", { backup: "hourly" }, { ns: "longhorn-system" })).status, 201, "excluded namespaces are unaffected");
    } finally {
      await rename(hiddenRepositoryPath, repository.rootPath);
    }
    const admitted = await createPvcOnceAdmitted("while-unreadable", "once the repository is readable");
    assert.equal((admitted.body["spec"] as { dataSourceRef?: unknown }).dataSourceRef, undefined);
  });

  it("3. pvc-guardian down: the fail-closed validator denies protected PVCs only; break-glass lifts it", async () => {
    await stopGuardian();
    const denied = await createPvc("while-down", { backup: "hourly" });
    assert.equal(denied.status, 500);
    assert.match(denied.message, /failed calling webhook "validate\.pvc-guardian\.volsync\.backup"/);
    assert.equal((await createPvc("unprotected-while-down", {})).status, 201);
    assert.equal((await createPvc("typo-while-down", { backup: "weekly" })).status, 201, "the validator only selects configured tiers");

    // Break-glass, the documented command's two deletions.
    for (const plural of ["mutatingwebhookconfigurations", "validatingwebhookconfigurations"]) {
      const deleted = await requestJson(cluster, "DELETE", `/apis/admissionregistration.k8s.io/v1/${plural}/pvc-guardian`);
      assert.equal(deleted.status, 200);
    }
    const created = await createPvcOnceAdmitted("after-break-glass", "after break-glass");
    assert.equal((created.body["spec"] as { dataSourceRef?: unknown }).dataSourceRef, undefined, "nothing restores while the webhooks are gone");
  });

  it("dormant: the validator admits protected PVCs even with the repository unreadable", async () => {
    await rename(repository.rootPath, hiddenRepositoryPath);
    try {
      await startWith({ dormant: true });
      const created = await createPvc("while-dormant", { backup: "hourly" });
      assert.equal(created.status, 201, created.message);
      assert.equal((created.body["spec"] as { dataSourceRef?: unknown }).dataSourceRef, undefined);
    } finally {
      await stopGuardian();
      await rename(hiddenRepositoryPath, repository.rootPath);
    }
    await startWith({ dormant: false });
    const gated = await createPvcOnceAdmitted("after-dormant", "once the active guardian answers again");
    assert.equal(gated.status, 201);
  });

  it("4. label removed: the sweeper deletes the generated objects after the grace period; the repository keeps its snapshots", async () => {
    const before = await repository.listSnapshotsJson();
    const pvcPath = `/api/v1/namespaces/${namespace}/persistentvolumeclaims/fresh-app`;
    const unlabelled = await requestJson(cluster, "PATCH", pvcPath, {
      body: { metadata: { labels: { backup: null } } },
      contentType: "application/merge-patch+json",
    });
    assert.equal(unlabelled.status, 200);
    // The sweep runs on a cron schedule (every minute here, the smallest step cron has). The
    // first sweep that sees the orphan starts its grace clock and a later one deletes it, so this
    // takes up to two minutes, more on a loaded machine.
    await eventually(
      "the RS, RD and Secret of fresh-app to be swept",
      async () => {
        const left = await Promise.all([
          getObject(volsync("replicationsources", "fresh-app-backup")),
          getObject(volsync("replicationdestinations", "fresh-app-backup")),
          getObject(secretPath("volsync-fresh-app")),
        ]);
        return left.every((object) => object === undefined) ? true : undefined;
      },
      { ...withinSeconds, timeoutMs: 200_000 },
    );
    assert.ok(await getObject(volsync("replicationdestinations", "restored-backup")), "objects of protected PVCs stay");
    assert.equal(await repository.listSnapshotsJson(), before, "the repository is untouched");
  });
});
