// The container image runs dist/pvc-guardian.mjs with its chunks in dist/ and nothing else (no
// node_modules, no .ts sources). So the bundle is built here with the project's own build.mjs into a temporary copy of
// the project, moved away from the sources, and run as a child process: it must start, serve
// HTTPS with a real certificate, answer an admission review from a real Kopia repository, and exit
// 0 on SIGTERM.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { copyFile, mkdir, mkdtemp, readFile, rename, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createKopiaRepository, findKopiaBinary, kopiaSkip, type KopiaRepository } from "../../harness/kopia.ts";
import { callHttps } from "../../support/https-call.ts";
import { createTestPki, type TestPki } from "../../support/test-pki.ts";

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const fixture = path.join(projectRoot, "test", "fixtures", "admission", "protected-create.json");

function run(command: string, args: string[], cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd, maxBuffer: 8 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${command} ${args.join(" ")} failed: ${stderr || error.message}`));
      else resolve(stdout + stderr);
    });
  });
}

type LogLine = { msg?: string; port?: number; level?: number };

/** build.mjs as the Dockerfile runs it, in a copy whose dist/ is its own; returns the bundle, away from the sources. */
async function buildBundle(workDir: string): Promise<string> {
  const buildDir = path.join(workDir, "build");
  await mkdir(buildDir);
  await copyFile(path.join(projectRoot, "build.mjs"), path.join(buildDir, "build.mjs"));
  await copyFile(path.join(projectRoot, "package.json"), path.join(buildDir, "package.json"));
  await symlink(path.join(projectRoot, "webhook"), path.join(buildDir, "webhook"));
  await symlink(path.join(projectRoot, "node_modules"), path.join(buildDir, "node_modules"));
  await run(process.execPath, ["build.mjs"], buildDir);
  const runDir = path.join(workDir, "app");
  await mkdir(runDir, { recursive: true });
  // dist/ as the Dockerfile copies it: the entry point and its chunks.
  await rename(path.join(buildDir, "dist"), path.join(runDir, "dist"));
  return path.join(runDir, "dist", "pvc-guardian.mjs");
}

/** The Deployment's NODE_OPTIONS, so the heap limit under test is the one the pod has. */
async function deploymentNodeOptions(): Promise<string> {
  const text = await readFile(path.join(projectRoot, "manifests", "deployment.yaml"), "utf8");
  const match = /- name: NODE_OPTIONS\s+value: "?([^"\n]*)"?/.exec(text);
  assert.ok(match, "the Deployment sets NODE_OPTIONS");
  return match[1]!;
}

/** Starts `serve` and resolves with its port once it logs "pvc-guardian serving". */
function waitForServing(child: ChildProcess, output: () => string, exited: Promise<number | null>): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "pvc-guardian serving" line within 30 s:\n${output()}`)), 30_000);
    const look = () => {
      for (const line of output().split("\n")) {
        if (!line.startsWith("{")) continue;
        const entry = JSON.parse(line) as LogLine;
        if (entry.msg === "pvc-guardian serving" && typeof entry.port === "number") {
          clearTimeout(timer);
          child.stdout!.off("data", look);
          return resolve(entry.port);
        }
      }
    };
    child.stdout!.on("data", look);
    void exited.then((code) => reject(new Error(`the bundle exited with ${code} before serving:\n${output()}`)));
  });
}

describe("the dist bundle under the Deployment heap limit", () => {
  let workDir: string;
  let bundle: string;
  let pki: TestPki;

  before(async () => {
    workDir = await mkdtemp(path.join(tmpdir(), "pvc-guardian-bundle-heap-"));
    bundle = await buildBundle(workDir);
    pki = await createTestPki();
  });

  after(async () => {
    await pki?.cleanup();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it("answers nested-array bodies with AdmissionReviews and stays up", async () => {
    const issued = await pki.issue("bundle-heap");
    const nodeOptions = await deploymentNodeOptions();
    const child: ChildProcess = spawn(process.execPath, [bundle, "serve"], {
      cwd: path.dirname(path.dirname(bundle)),
      env: {
        PATH: process.env.PATH,
        NODE_OPTIONS: nodeOptions,
        PVC_GUARDIAN_TLS_CERT_FILE: issued.certPath,
        PVC_GUARDIAN_TLS_KEY_FILE: issued.keyPath,
        PVC_GUARDIAN_LISTEN_HOST: "127.0.0.1",
        PVC_GUARDIAN_PORT: "0",
        PVC_GUARDIAN_OPS_PORT: "0",
        PVC_GUARDIAN_KUBERNETES: "off",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    let exitCode: number | null | undefined;
    void exited.then((code) => (exitCode = code));
    try {
      const port = await waitForServing(child, () => output, exited);
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
            answer = await callHttps(pki.ca.certPem, port, {
              method: "POST",
              path: "/validate-v1-pvc",
              body,
              headers: { "content-type": "application/json" },
              isChunked,
            });
          } catch (error) {
            // The 413 is written as soon as the headers are read and the connection closed after
            // it; a client still sending the body may see the close before the answer.
            assert.equal(code, 413, `${(error as Error).message}\n${output}`);
            assert.match((error as NodeJS.ErrnoException).code ?? "", /^(EPIPE|ECONNRESET)$/);
            continue;
          }
          assert.equal(answer.status, 200);
          const review = JSON.parse(answer.text) as { kind: string; response: { allowed: boolean; status?: { code: number } } };
          assert.equal(review.kind, "AdmissionReview");
          assert.equal(review.response.allowed, false);
          assert.equal(review.response.status?.code, code);
        }
      }
      assert.equal((await callHttps(pki.ca.certPem, port, { path: "/healthz" })).text, "ok\n");
      assert.equal(exitCode, undefined, `the bundle is still running; output:\n${output}`);
    } finally {
      child.kill("SIGTERM");
    }
    assert.equal(await exited, 0, `exit code after SIGTERM; output:\n${output}`);
  });
});

describe("the dist bundle", { skip: kopiaSkip() }, () => {
  let workDir: string;
  let bundle: string;
  let pki: TestPki;
  let repository: KopiaRepository;

  before(async () => {
    workDir = await mkdtemp(path.join(tmpdir(), "pvc-guardian-bundle-"));
    // Away from node_modules and the sources: the image has neither.
    bundle = await buildBundle(workDir);

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
    const child: ChildProcess = spawn(process.execPath, [bundle, "serve"], {
      cwd: path.dirname(path.dirname(bundle)),
      env: {
        PATH: process.env.PATH,
        PVC_GUARDIAN_TLS_CERT_FILE: issued.certPath,
        PVC_GUARDIAN_TLS_KEY_FILE: issued.keyPath,
        PVC_GUARDIAN_LISTEN_HOST: "127.0.0.1",
        // Port 0: the server logs the port it got.
        PVC_GUARDIAN_PORT: "0",
        PVC_GUARDIAN_OPS_PORT: "0",
        PVC_GUARDIAN_REPOSITORY_PATH: repository.rootPath,
        PVC_GUARDIAN_PASSWORD_FILE: repository.passwordFile,
        PVC_GUARDIAN_KUBERNETES: "off",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    try {
      const port = await new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no "pvc-guardian serving" line within 30 s:\n${output}`)), 30_000);
        const look = () => {
          for (const line of output.split("\n")) {
            if (!line.startsWith("{")) continue;
            const entry = JSON.parse(line) as LogLine;
            if (entry.msg === "pvc-guardian serving" && typeof entry.port === "number") {
              clearTimeout(timer);
              child.stdout!.off("data", look);
              return resolve(entry.port);
            }
          }
        };
        child.stdout!.on("data", look);
        void exited.then((code) => reject(new Error(`the bundle exited with ${code} before serving:\n${output}`)));
      });
      assert.ok(port > 0);

      const health = await callHttps(pki.ca.certPem, port, { path: "/healthz" });
      assert.equal(health.status, 200);
      assert.equal(health.text, "ok\n");

      // The empty repository was read, so a protected PVC is authoritatively fresh: allowed.
      const review = await readFile(fixture, "utf8");
      const answer = await callHttps(pki.ca.certPem, port, {
        method: "POST",
        path: "/validate-v1-pvc",
        body: review,
        headers: { "content-type": "application/json" },
      });
      assert.equal(answer.status, 200);
      const body = JSON.parse(answer.text) as { response: { uid: string; allowed: boolean } };
      assert.equal(body.response.uid, (JSON.parse(review) as { request: { uid: string } }).request.uid);
      assert.equal(body.response.allowed, true, answer.text);
    } finally {
      child.kill("SIGTERM");
    }
    assert.equal(await exited, 0, `exit code after SIGTERM; output:\n${output}`);
    assert.match(output, /draining and stopping/);
  });
});
