import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { pino } from "pino";
import { createCertificateAuthority, issueServerCertificate } from "../../../certs/pki.ts";
import { loadConfig } from "../../../webhook/config.ts";
import { startGuardian, type RunningGuardian } from "../../../webhook/main.ts";
import { callHttps, postJson } from "../../support/https-call.ts";
import { pvcCreateReview } from "../../support/pvc-review.ts";
import { createKopiaRepository, findKopiaBinary, kopiaSkip, type KopiaRepository } from "../../harness/kopia.ts";

// The whole request path with real parts: a repository written by the real kopia binary, the
// native reader and catalog, the admission handlers, and the HTTPS listener with a test CA the
// client trusts. Identities are written the way VolSync's mover names them.

const skip = kopiaSkip();

type Review = {
  response: { uid: string; allowed: boolean; patch?: string; patchType?: string; status?: { code: number; message: string }; warnings?: string[] };
};

function pvcReview(
  uid: string,
  name: string,
  namespace: string,
  extra: { dataSourceRef?: unknown; labels?: Record<string, string>; annotations?: Record<string, string> } = {},
) {
  return pvcCreateReview({
    uid,
    name,
    namespace,
    ...(extra.labels ? { labels: extra.labels } : {}),
    ...(extra.annotations ? { annotations: extra.annotations } : {}),
    spec: extra.dataSourceRef ? { dataSourceRef: extra.dataSourceRef } : {},
  });
}

describe("restore decision over HTTPS from a real Kopia repository", { skip }, () => {
  let workDir: string;
  let caPem: string;
  let repository: KopiaRepository;
  let guardian: RunningGuardian;
  let tls: { certFile: string; keyFile: string };

  async function post(port: number, route: string, body: unknown): Promise<{ status: number; review: Review }> {
    const answer = await postJson(caPem, port, route, body);
    return { status: answer.status, review: JSON.parse(answer.text) as Review };
  }

  async function start(passwordFile: string): Promise<RunningGuardian> {
    const loaded = loadConfig({
      PVC_GUARDIAN_LISTEN_HOST: "127.0.0.1",
      PVC_GUARDIAN_PORT: "0",
      PVC_GUARDIAN_OPS_PORT: "0",
      PVC_GUARDIAN_TLS_CERT_FILE: tls.certFile,
      PVC_GUARDIAN_TLS_KEY_FILE: tls.keyFile,
      PVC_GUARDIAN_REPOSITORY_PATH: repository.rootPath,
      PVC_GUARDIAN_PASSWORD_FILE: passwordFile,
      PVC_GUARDIAN_KUBERNETES: "off",
    });
    assert.ok(loaded.ok, loaded.ok ? "" : loaded.problems.join("\n"));
    // No Service sends traffic here, so there is nothing to wait for when stopping.
    loaded.config.shutdown.drainDelayMs = 0;
    return startGuardian(loaded.config, pino({ level: "silent" }));
  }

  before(async () => {
    workDir = await mkdtemp(path.join(tmpdir(), "pvc-guardian-https-"));
    const ca = await createCertificateAuthority(workDir, { commonName: "restore-decision test CA" });
    const server = await issueServerCertificate(ca, workDir, { commonName: "127.0.0.1", ipAddresses: ["127.0.0.1"] });
    caPem = ca.certPem;
    tls = { certFile: server.certPath, keyFile: server.keyPath };
    const binary = findKopiaBinary();
    assert.ok("path" in binary);
    repository = await createKopiaRepository({ binaryPath: binary.path, layout: "connect-then-create", parentDir: workDir });
    const data = await repository.makeSourceDir("app-data", { "db.sqlite": "rows" });
    await repository.snapshot(data, { source: "app-data-backup@media:/data" });
    // VolSync sanitises a dotted, underscored name: `db.primary_v2-backup` → `dbprimary_v2-backup`.
    await repository.snapshot(data, { source: "dbprimary_v2-backup@prod:/data" });
    guardian = await start(repository.passwordFile);
  });

  after(async () => {
    await guardian?.stop();
    await repository?.dispose();
    await rm(workDir, { recursive: true, force: true });
  });

  it("injects dataSourceRef when a snapshot exists for the PVC's identity", async () => {
    const { status, review } = await post(guardian.port, "/mutate-v1-pvc", pvcReview("uid-restore", "app-data", "media"));
    assert.equal(status, 200);
    assert.equal(review.response.uid, "uid-restore");
    assert.equal(review.response.patchType, "JSONPatch");
    const patch = JSON.parse(Buffer.from(review.response.patch ?? "", "base64").toString("utf8")) as unknown;
    assert.deepEqual(patch, [
      { op: "add", path: "/spec/dataSourceRef", value: { apiGroup: "volsync.backube", kind: "ReplicationDestination", name: "app-data-backup" } },
    ]);
  });

  it("allows the patched PVC and denies one that lost its dataSourceRef", async () => {
    const ref = { apiGroup: "volsync.backube", kind: "ReplicationDestination", name: "app-data-backup" };
    const patchedAnswer = await post(guardian.port, "/validate-v1-pvc", pvcReview("uid-ok", "app-data", "media", { dataSourceRef: ref }));
    assert.equal(patchedAnswer.review.response.allowed, true);
    const bare = await post(guardian.port, "/validate-v1-pvc", pvcReview("uid-bare", "app-data", "media"));
    assert.equal(bare.review.response.allowed, false);
    assert.match(bare.review.response.status?.message ?? "", /a backup exists .* must be restored through dataSourceRef/);
  });

  it("finds snapshots under VolSync's sanitised identity of a dotted name, and restores them only when told to", async () => {
    // Other names (db.primaryv2, dbprimary_v2) sanitise to the same identity: restoring from it
    // silently could hand this PVC another one's data.
    const denied = await post(guardian.port, "/validate-v1-pvc", pvcReview("uid-dotted", "db.primary_v2", "prod"));
    assert.equal(denied.review.response.allowed, false);
    assert.match(denied.review.response.status?.message ?? "", /restore-from-identity: "dbprimary_v2-backup@prod:\/data"/);
    const mutated = await post(guardian.port, "/mutate-v1-pvc", pvcReview("uid-dotted-m", "db.primary_v2", "prod"));
    assert.equal(mutated.review.response.patch, undefined);
    const told = { "volsync.backup/restore-from-identity": "dbprimary_v2-backup@prod:/data" };
    const { review } = await post(guardian.port, "/mutate-v1-pvc", pvcReview("uid-dotted-told", "db.primary_v2", "prod", { annotations: told }));
    assert.equal(review.response.patchType, "JSONPatch");
  });

  it("answers fresh for an identity the repository has never seen", async () => {
    const mutate = await post(guardian.port, "/mutate-v1-pvc", pvcReview("uid-fresh", "new-app", "media"));
    assert.equal(mutate.review.response.allowed, true);
    assert.equal(mutate.review.response.patch, undefined);
    const validate = await post(guardian.port, "/validate-v1-pvc", pvcReview("uid-fresh-v", "new-app", "media"));
    assert.equal(validate.review.response.allowed, true);
  });

  it("sees a snapshot taken after start through the refresh on a miss", async () => {
    const dir = await repository.makeSourceDir("late", { "file.txt": "late data" });
    await repository.snapshot(dir, { source: "late-app-backup@media:/data" });
    const { review } = await post(guardian.port, "/mutate-v1-pvc", pvcReview("uid-late", "late-app", "media"));
    assert.equal(review.response.patchType, "JSONPatch", JSON.stringify(review));
  });

  it("denies a protected PVC with the identity and the error when the password is wrong", async () => {
    const wrongPassword = path.join(workDir, "wrong-password");
    await writeFile(wrongPassword, "not the password", { mode: 0o600 });
    const broken = await start(wrongPassword);
    try {
      const { status, review } = await post(broken.port, "/validate-v1-pvc", pvcReview("uid-wrong", "app-data", "media"));
      assert.equal(status, 200);
      assert.equal(review.response.allowed, false);
      assert.match(review.response.status?.message ?? "", /app-data-backup@media:\/data/);
      assert.match(review.response.status?.message ?? "", /password|decrypt|authenticat/i);
      const unprotected = await post(broken.port, "/validate-v1-pvc", pvcReview("uid-plain", "scratch", "media", { labels: {} }));
      assert.equal(unprotected.review.response.allowed, true);
      // It stays in the Service to give that explained denial; the detail is on the ops port.
      const ready = await callHttps(caPem, broken.port, { path: "/readyz" });
      assert.equal(ready.status, 200);
      const detail = await fetch(`http://127.0.0.1:${broken.opsPort}/readyz?verbose`);
      assert.equal(detail.status, 200);
      assert.match(await detail.text(), /\[!\]catalog \(not gating readiness\): snapshot catalog of repository default not fresh/);
    } finally {
      await broken.stop();
    }
  });
});
