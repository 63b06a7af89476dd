// The independent oracle for restore verification: the real kopia v0.22.3 snapshots small trees,
// restores them the way VolSync's mover does (`snapshot restore <id> <dir>
// --write-files-atomically --ignore-permission-errors` into an existing empty directory), and
// its own Restored line and its own manifest (`kopia snapshot list --json`) are what
// verifyRestore is given. Nothing expected here comes from our code.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { verifyRestore } from "../../../webhook/domain/restore-verification.ts";
import { createKopiaRepository, findKopiaBinary, kopiaSkip, type KopiaRepository } from "../../harness/kopia.ts";

const execFileAsync = promisify(execFile);

type ListedSnapshot = {
  id: string;
  source: { userName: string };
  stats: { fileCount: number; dirCount: number; totalSize: number; cachedFiles: number };
  rootEntry: { summ: { files: number; symlinks: number; dirs: number; size: number } };
};

describe("restore verification against the real kopia v0.22.3", { skip: kopiaSkip("v0.22.3") }, () => {
  let repository: KopiaRepository;
  let binaryPath: string;
  const restoreLines = new Map<string, { line: string; stderr: string }>();
  const ids = new Map<string, string>();
  const listed = new Map<string, ListedSnapshot>();

  /** Restores into a fresh, existing directory as the mover does; returns kopia's stderr. */
  async function restore(id: string, extraEnv: Record<string, string> = {}): Promise<string> {
    const target = join(repository.workDir, "restores", `${id}-${Object.keys(extraEnv).length}`);
    await mkdir(target, { recursive: true });
    const { stdout, stderr } = await execFileAsync(
      binaryPath,
      [
        "snapshot",
        "restore",
        id,
        target,
        "--write-files-atomically",
        "--ignore-permission-errors",
        "--no-progress",
        `--config-file=${join(repository.workDir, "kopia.config")}`,
        `--log-dir=${join(repository.workDir, "logs")}`,
      ],
      {
        env: {
          PATH: process.env.PATH ?? "/usr/bin:/bin",
          HOME: repository.workDir,
          KOPIA_PASSWORD: repository.password,
          KOPIA_CHECK_FOR_UPDATES: "false",
          ...extraEnv,
        },
      },
    );
    return `${stdout}${stderr}`;
  }

  const restoredLine = (output: string): string => {
    const line = output.split("\n").find((l) => l.startsWith("Restored "));
    assert.ok(line, `kopia printed no Restored line:\n${output}`);
    return line;
  };

  before(async () => {
    const found = findKopiaBinary("v0.22.3");
    if (!("path" in found)) throw new Error(found.skipReason);
    binaryPath = found.path;
    repository = await createKopiaRepository({ binaryPath, layout: "create" });

    // A tree with nested and empty directories, two symbolic links and 1,257 bytes of files.
    const tree = join(repository.workDir, "sources", "tree");
    await mkdir(join(tree, "a", "b", "c"), { recursive: true });
    await mkdir(join(tree, "empty"));
    await writeFile(join(tree, "f1"), "hello");
    await writeFile(join(tree, "a", "f2"), "0".repeat(1250));
    await writeFile(join(tree, "a", "b", "c", "f3"), "x\n");
    await symlink("f1", join(tree, "link"));
    await symlink("a/b", join(tree, "dirlink"));
    const treeId = await repository.snapshot(tree, { source: "tree@ns:/data" });
    // The same source again after one file changed: kopia reuses (caches) the unchanged entries.
    await writeFile(join(tree, "a", "b", "c", "f3"), "x\nmore\n");
    const treeAgainId = await repository.snapshot(tree, { source: "tree@ns:/data" });

    // Over a megabyte, exactly 1,250,000 bytes: 1.25 MB, a tie kopia's Go formatting rounds to even.
    const big = join(repository.workDir, "sources", "big");
    await mkdir(join(big, "sub"), { recursive: true });
    await writeFile(join(big, "blob.bin"), Buffer.alloc(1_249_000, 7));
    await writeFile(join(big, "sub", "k.txt"), "k".repeat(1000));
    const bigId = await repository.snapshot(big, { source: "big@ns:/data" });

    for (const snapshot of JSON.parse(await repository.listSnapshotsJson()) as ListedSnapshot[]) listed.set(snapshot.id, snapshot);
    for (const [name, id] of [
      ["tree", treeId],
      ["treeAgain", treeAgainId],
      ["big", bigId],
    ] as const) {
      ids.set(name, id);
      const stderr = await restore(id);
      restoreLines.set(name, { line: restoredLine(stderr), stderr });
    }
  });

  after(async () => {
    await repository?.dispose();
  });

  const idOf = (name: string) => ids.get(name)!;
  const lineOf = (name: string) => restoreLines.get(name)!.line;
  const statsAnnotation = (stats: ListedSnapshot["stats"]) =>
    JSON.stringify({ fileCount: stats.fileCount, dirCount: stats.dirCount, totalSize: stats.totalSize });
  const summaryAnnotation = (summ: ListedSnapshot["rootEntry"]["summ"]) =>
    JSON.stringify({ fileCount: summ.files, dirCount: summ.dirs, totalSize: summ.size, symlinkCount: summ.symlinks });
  const verify = (name: string, pinnedStats: string, logs = lineOf(name)) =>
    verifyRestore({ snapshotId: idOf(name), pinnedStats, moverStatus: { result: "Successful", logs } });

  it("counts the root directory in both the Restored line and the manifest's dirCount", () => {
    const snapshot = listed.get(idOf("tree"))!;
    // root, a, a/b, a/b/c, empty
    assert.equal(snapshot.stats.dirCount, 5);
    assert.equal(snapshot.rootEntry.summ.dirs, 5);
    assert.equal(lineOf("tree"), "Restored 3 files, 5 directories and 2 symbolic links (1.3 KB).");
  });

  it("verifies a first snapshot from the stats kopia lists for it", () => {
    const snapshot = listed.get(idOf("tree"))!;
    assert.deepEqual([snapshot.stats.fileCount, snapshot.stats.totalSize], [3, 1257]);
    const outcome = verify("tree", statsAnnotation(snapshot.stats));
    assert.deepEqual(outcome.finished && outcome.verdict, "verified", JSON.stringify(outcome));
  });

  it("verifies the same restore from the mover's full log, as MOVER_LOG_DEBUG keeps it", () => {
    const outcome = verify(
      "tree",
      statsAnnotation(listed.get(idOf("tree"))!.stats),
      `INFO: Executing restore command...\n${restoreLines.get("tree")!.stderr}INFO: Snapshot restore completed successfully\n`,
    );
    assert.deepEqual(outcome.finished && outcome.verdict, "verified", JSON.stringify(outcome));
  });

  it("prints a rounded size over a megabyte, ties to even, and verifies it", () => {
    const snapshot = listed.get(idOf("big"))!;
    assert.equal(snapshot.stats.totalSize, 1_250_000);
    assert.equal(lineOf("big"), "Restored 2 files, 2 directories and 0 symbolic links (1.2 MB).");
    const outcome = verify("big", statsAnnotation(snapshot.stats));
    assert.deepEqual(outcome.finished && outcome.verdict, "verified", JSON.stringify(outcome));
  });

  it("verifies kopia's base-2 size text (KOPIA_BYTES_STRING_BASE_2) too", async () => {
    const line = restoredLine(await restore(idOf("big"), { KOPIA_BYTES_STRING_BASE_2: "true" }));
    assert.equal(line, "Restored 2 files, 2 directories and 0 symbolic links (1.2 MiB).");
    const outcome = verify("big", statsAnnotation(listed.get(idOf("big"))!.stats), line);
    assert.deepEqual(outcome.finished && outcome.verdict, "verified", JSON.stringify(outcome));
  });

  it("says mismatch when the restore is compared with another snapshot's stats", () => {
    const outcome = verify("tree", statsAnnotation(listed.get(idOf("big"))!.stats));
    assert.deepEqual(outcome.finished && outcome.verdict, "mismatch", JSON.stringify(outcome));
    const reverse = verify("big", statsAnnotation(listed.get(idOf("tree"))!.stats));
    assert.deepEqual(reverse.finished && reverse.verdict, "mismatch", JSON.stringify(reverse));
  });

  it("in a later snapshot of the same source, stats count only re-uploaded files; the root entry's summary holds the totals", () => {
    const snapshot = listed.get(idOf("treeAgain"))!;
    assert.equal(lineOf("treeAgain"), "Restored 3 files, 5 directories and 2 symbolic links (1.3 KB).");
    // kopia's upload counts a cached entry (files and symlinks alike) in cachedFiles, not fileCount,
    // and adds cached symlinks' target lengths to totalSize ("f1" + "a/b" = 5 bytes).
    assert.deepEqual(
      { fileCount: snapshot.stats.fileCount, cachedFiles: snapshot.stats.cachedFiles, totalSize: snapshot.stats.totalSize },
      { fileCount: 1, cachedFiles: 4, totalSize: 1262 + 5 },
    );
    assert.deepEqual(snapshot.rootEntry.summ, { ...snapshot.rootEntry.summ, files: 3, symlinks: 2, dirs: 5, size: 1262 });
    const fromStats = verify("treeAgain", statsAnnotation(snapshot.stats));
    assert.deepEqual(fromStats.finished && fromStats.verdict, "mismatch", "pinning manifest stats would report a good restore as a mismatch");
    const fromSummary = verify("treeAgain", summaryAnnotation(snapshot.rootEntry.summ));
    assert.deepEqual(fromSummary.finished && fromSummary.verdict, "verified", JSON.stringify(fromSummary));
  });

  it("verifies every snapshot against its root entry's summary, symbolic links included", () => {
    for (const name of ["tree", "treeAgain", "big"]) {
      const outcome = verify(name, summaryAnnotation(listed.get(idOf(name))!.rootEntry.summ));
      assert.deepEqual(outcome.finished && outcome.verdict, "verified", `${name}: ${JSON.stringify(outcome)}`);
    }
  });
});
