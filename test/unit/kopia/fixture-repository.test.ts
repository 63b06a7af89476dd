// The committed real Kopia repository (test/fixtures/kopia-repository, written by kopia v0.22.3)
// read without the Go toolchain: our listing against kopia's own recorded listing, and the
// catalog's decision on it.

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { runSnapshotsCommand } from "../../../webhook/cli/snapshots.ts";
import { decideRestore } from "../../../webhook/domain/restore-decision.ts";
import { createKopiaCatalog } from "../../../webhook/kopia/snapshot-catalog.ts";

const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "fixtures", "kopia-repository");
const repositoryPath = path.join(fixture, "repository");
const passwordFile = path.join(fixture, "password");

async function ourListing(extra: string[] = []): Promise<string> {
  let stdout = "";
  let stderr = "";
  const code = await runSnapshotsCommand(["--repository", repositoryPath, "--password-file", passwordFile, "--json", ...extra], {
    stdout: (text) => (stdout += text),
    stderr: (text) => (stderr += text),
  });
  assert.equal(code, 0, stderr);
  return stdout;
}

test("the listing of the committed repository is kopia's own, byte for byte, retention reasons included", async () => {
  assert.equal(await ourListing(), readFileSync(path.join(fixture, "kopia-snapshot-list-all.json"), "utf8"));
  assert.equal(await ourListing(["--no-retention"]), readFileSync(path.join(fixture, "kopia-snapshot-list-all-no-retention.json"), "utf8"));
});

test("the catalog restores the newest complete snapshot, pinned, past the newer incomplete one", async () => {
  const catalog = createKopiaCatalog({ repositoryPath, passwordFile, refreshIntervalMs: 3_600_000, freshnessBoundMs: 60_000, missRefreshTimeoutMs: 1_000 });
  await catalog.start();
  catalog.stop();
  const kopiaListed = JSON.parse(readFileSync(path.join(fixture, "kopia-snapshot-list-all.json"), "utf8")) as Array<{
    id: string;
    startTime: string;
    incomplete?: string;
    source: { userName: string };
  }>;
  const appData = kopiaListed.filter((s) => s.source.userName === "app-data-backup");
  const newestComplete = appData.filter((s) => s.incomplete === undefined).at(-1)!;
  assert.ok(
    appData.some((s) => s.incomplete !== undefined),
    "the fixture holds an incomplete snapshot",
  );

  const decision = decideRestore("app-data-backup@media:/data", catalog.lookup("app-data-backup@media:/data", Date.now()));
  assert.equal(decision.answer, "restore");
  assert.equal(decision.answer === "restore" && decision.snapshot.id, newestComplete.id);
  assert.deepEqual(decision.answer === "restore" && decision.restorePoint, { restoreAsOf: newestComplete.startTime, previous: 0 });
  assert.equal(decideRestore("new-app-backup@media:/data", catalog.lookup("new-app-backup@media:/data", Date.now())).answer, "fresh");
});

test("the catalog answers unknown once its last read is older than the freshness bound, and fresh again after a read", async () => {
  let nowMs = Date.now();
  const catalog = createKopiaCatalog({
    repositoryPath,
    passwordFile,
    refreshIntervalMs: 3_600_000,
    freshnessBoundMs: 60_000,
    missRefreshTimeoutMs: 1_000,
    now: () => nowMs,
  });
  await catalog.start();
  catalog.stop();
  assert.equal(decideRestore("app-data-backup@media:/data", catalog.lookup("app-data-backup@media:/data", nowMs)).answer, "restore");

  nowMs += 61_000;
  const stale = catalog.lookup("app-data-backup@media:/data", nowMs);
  assert.equal(stale.readable, false);
  assert.match(!stale.readable ? stale.reason : "", /stale: last read 61 s ago, over the 60 s bound/);
  assert.equal(decideRestore("new-app-backup@media:/data", catalog.lookup("new-app-backup@media:/data", nowMs)).answer, "unknown", "never fresh");

  const outcome = await catalog.refresh();
  assert.equal(outcome.ok, true);
  assert.equal(decideRestore("app-data-backup@media:/data", catalog.lookup("app-data-backup@media:/data", nowMs)).answer, "restore");
  assert.equal(decideRestore("new-app-backup@media:/data", catalog.lookup("new-app-backup@media:/data", nowMs)).answer, "fresh");
});

test("the catalog answers unknown, never fresh, for the committed repository read with a wrong password", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "pvc-guardian-wrong-password-"));
  try {
    const wrongPassword = path.join(dir, "password");
    writeFileSync(wrongPassword, "not-the-password\n");
    const catalog = createKopiaCatalog({
      repositoryPath,
      passwordFile: wrongPassword,
      refreshIntervalMs: 3_600_000,
      freshnessBoundMs: 60_000,
      missRefreshTimeoutMs: 1_000,
    });
    await catalog.start();
    catalog.stop();
    assert.notEqual(catalog.health().lastError, null);
    for (const identity of ["app-data-backup@media:/data", "new-app-backup@media:/data"]) {
      assert.equal(decideRestore(identity, catalog.lookup(identity, Date.now())).answer, "unknown", identity);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
