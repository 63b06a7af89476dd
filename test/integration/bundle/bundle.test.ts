// The container image runs dist/pvc-guardian.mjs with its chunks in dist/ and nothing else (no
// node_modules, no .ts sources). So the bundle is built here with the project's own build.mjs into a temporary copy of
// the project, moved away from the sources, and run as a child process: it must start, serve
// HTTPS with a real certificate, answer an admission review from a real Kopia repository, and exit
// 0 on SIGTERM.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { buildImageBundle, deploymentNodeOptions, startImageProcess, type ImageProcess } from "../../harness/image-process.ts";
import { createKopiaRepository, findKopiaBinary, kopiaSkip, type KopiaRepository } from "../../harness/kopia.ts";
import { callHttps, postJson } from "../../support/https-call.ts";
import { parseReview } from "../../support/parse-review.ts";
import { createTestPki, type TestPki } from "../../support/test-pki.ts";

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const fixture = path.join(projectRoot, "test", "fixtures", "admission", "protected-create.json");

/**
 * Runs `dist/pvc-guardian.mjs serve` from the image's WORKDIR with only the loopback listeners on
 * ports 0, Kubernetes off and `env`, keeping what it writes for the assertions' messages.
 */
async function startBundle(distDir: string, env: Record<string, string>): Promise<ImageProcess & { output: () => string }> {
  const lines: string[] = [];
  const running = await startImageProcess({
    appDir: path.dirname(distDir),
    argv: [path.join(distDir, "pvc-guardian.mjs"), "serve"],
    env: {
      PVC_GUARDIAN_LISTEN_HOST: "127.0.0.1",
      // Port 0: the server logs the port it got.
      PVC_GUARDIAN_PORT: "0",
      PVC_GUARDIAN_OPS_PORT: "0",
      PVC_GUARDIAN_KUBERNETES: "off",
      ...env,
    },
    startTimeoutMs: 30_000,
    onLog: (line) => lines.push(line),
  });
  return { ...running, output: () => `${lines.join("\n")}\n${running.stderr()}` };
}

describe("the dist bundle under the Deployment heap limit", () => {
  let workDir: string;
  let distDir: string;
  let pki: TestPki;

  before(async () => {
    workDir = await mkdtemp(path.join(tmpdir(), "pvc-guardian-bundle-heap-"));
    distDir = await buildImageBundle(workDir);
    pki = await createTestPki();
  });

  after(async () => {
    await pki?.cleanup();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it("answers nested-array bodies with AdmissionReviews and stays up", async () => {
    const issued = await pki.issue("bundle-heap");
    // The Deployment's NODE_OPTIONS, so the heap limit under test is the one the pod has.
    const nodeOptions = await deploymentNodeOptions();
    assert.ok(nodeOptions !== undefined, "the Deployment sets NODE_OPTIONS");
    const running = await startBundle(distDir, {
      NODE_OPTIONS: nodeOptions,
      PVC_GUARDIAN_TLS_CERT_FILE: issued.certPath,
      PVC_GUARDIAN_TLS_KEY_FILE: issued.keyPath,
    });
    const { port, output } = running;
    let exitCode: number | null = null;
    try {
      // Within the body limit, deep enough to exhaust a 192 MB heap in JSON.parse; then the
      // reported 4.77 MiB body, declared and chunked.
      const bodies = [
        { body: "[".repeat(1_400_000) + "]".repeat(1_400_000), isChunked: false, code: 400 },
        { body: "[".repeat(2_500_000) + "]".repeat(2_500_000), isChunked: false, code: 413 },
        { body: "[".repeat(2_500_000) + "]".repeat(2_500_000), isChunked: true, code: 413 },
      ];
      for (let round = 0; round < 3; round += 1) {
        for (const { body, isChunked, code } of bodies) {
          let answer;
          try {
            answer = await postJson(pki.ca.certPem, port, "/validate-v1-pvc", body, { isChunked });
          } catch (error) {
            // The 413 is written as soon as the headers are read and the connection closed after
            // it; a client still sending the body may see the close before the answer.
            assert.equal(code, 413, `${(error as Error).message}\n${output()}`);
            assert.match((error as NodeJS.ErrnoException).code ?? "", /^(EPIPE|ECONNRESET)$/);
            continue;
          }
          assert.equal(answer.status, 200);
          const review = parseReview(answer.text);
          assert.equal(review.response.allowed, false);
          assert.equal(review.response.status?.code, code);
        }
      }
      assert.equal((await callHttps(pki.ca.certPem, port, { path: "/healthz" })).text, "ok\n");
      assert.equal(running.isRunning(), true, `the bundle is still running; output:\n${output()}`);
    } finally {
      exitCode = await running.stop();
    }
    assert.equal(exitCode, 0, `exit code after SIGTERM; output:\n${output()}`);
  });
});

describe("the dist bundle", { skip: kopiaSkip() }, () => {
  let workDir: string;
  let distDir: string;
  let pki: TestPki;
  let repository: KopiaRepository;

  before(async () => {
    workDir = await mkdtemp(path.join(tmpdir(), "pvc-guardian-bundle-"));
    // Away from node_modules and the sources: the image has neither.
    distDir = await buildImageBundle(workDir);

    pki = await createTestPki();
    const binary = findKopiaBinary();
    assert.ok("path" in binary);
    repository = await createKopiaRepository({ binaryPath: binary.path, layout: "create" });
  });

  after(async () => {
    await repository?.dispose();
    await pki?.cleanup();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it("starts, serves /healthz and a validate review over HTTPS, and exits 0 on SIGTERM", async () => {
    const issued = await pki.issue("bundle");
    const running = await startBundle(distDir, {
      PVC_GUARDIAN_TLS_CERT_FILE: issued.certPath,
      PVC_GUARDIAN_TLS_KEY_FILE: issued.keyPath,
      PVC_GUARDIAN_REPOSITORY_PATH: repository.rootPath,
      PVC_GUARDIAN_PASSWORD_FILE: repository.passwordFile,
    });
    const { port, output } = running;
    let exitCode: number | null = null;
    try {
      assert.ok(port > 0);

      const health = await callHttps(pki.ca.certPem, port, { path: "/healthz" });
      assert.equal(health.status, 200);
      assert.equal(health.text, "ok\n");

      // The empty repository was read, so a protected PVC is authoritatively fresh: allowed.
      const review = await readFile(fixture, "utf8");
      const answer = await postJson(pki.ca.certPem, port, "/validate-v1-pvc", review);
      assert.equal(answer.status, 200);
      const body = JSON.parse(answer.text) as { response: { uid: string; allowed: boolean } };
      assert.equal(body.response.uid, (JSON.parse(review) as { request: { uid: string } }).request.uid);
      assert.equal(body.response.allowed, true, answer.text);
    } finally {
      exitCode = await running.stop();
    }
    assert.equal(exitCode, 0, `exit code after SIGTERM; output:\n${output()}`);
    assert.match(output(), /draining and stopping/);
  });
});
