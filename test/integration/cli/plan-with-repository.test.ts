import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { runPlanCommand } from "../../../webhook/cli/plan.ts";
import { createKopiaRepository, findKopiaBinary, kopiaSkip, type KopiaRepository } from "../../harness/kopia.ts";

const skip = kopiaSkip();

const manifests = `apiVersion: v1
kind: PersistentVolumeClaim
metadata: { name: app-data, namespace: media, labels: { backup: daily } }
spec: { accessModes: [ReadWriteOnce], resources: { requests: { storage: 5Gi } } }
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: { name: cache, namespace: media, labels: { backup: daily } }
spec: { resources: { requests: { storage: 1Gi } } }
`;

describe("pvc-guardian plan --repository", { skip }, () => {
  let workDir: string;
  let repository: KopiaRepository;
  let snapshotId: string;

  before(async () => {
    workDir = await mkdtemp(path.join(tmpdir(), "pvc-guardian-plan-"));
    const binary = findKopiaBinary();
    assert.ok("path" in binary);
    repository = await createKopiaRepository({ binaryPath: binary.path, layout: "create", parentDir: workDir });
    const dir = await repository.makeSourceDir("app", { "a.txt": "a" });
    snapshotId = await repository.snapshot(dir, { source: "app-data-backup@media:/data" });
    await writeFile(path.join(workDir, "manifests.yaml"), manifests);
  });

  after(async () => {
    await repository?.dispose();
    await rm(workDir, { recursive: true, force: true });
  });

  async function plan(passwordFile: string) {
    let out = "";
    let err = "";
    const code = await runPlanCommand(
      ["-f", path.join(workDir, "manifests.yaml"), "--repository", repository.rootPath, "--password-file", passwordFile, "-o", "json"],
      {
        stdout: (text) => (out += text),
        stderr: (text) => (err += text),
        readFile: (file) => readFileSync(file, "utf8"),
        readStdin: async () => "",
        env: {},
        now: Date.now,
      },
    );
    return { code, err, report: JSON.parse(out) as { pvcs: { pvc: string; decision: string; decisionDetail: string; patch: unknown[] }[] } };
  }

  it("decides restore and fresh from the real repository", async () => {
    const { code, report } = await plan(repository.passwordFile);
    assert.equal(code, 0);
    const [appData, cache] = report.pvcs;
    assert.equal(appData?.decision, "restore");
    assert.match(appData?.decisionDetail ?? "", new RegExp(snapshotId));
    assert.equal(appData?.patch.length, 1);
    assert.equal(cache?.decision, "fresh");
  });

  it("says unknown, never fresh, when the repository cannot be read", async () => {
    const wrong = path.join(workDir, "wrong");
    await writeFile(wrong, "nope");
    const { code, err, report } = await plan(wrong);
    assert.equal(code, 0);
    assert.match(err, /could not be read/);
    assert.deepEqual(
      report.pvcs.map((entry) => entry.decision),
      ["unknown", "unknown"],
    );
  });
});
