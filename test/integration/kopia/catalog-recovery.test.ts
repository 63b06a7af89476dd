// The catalog's timing on a real kopia v0.22.3 repository: it reads again soon after a failed
// read, so answers are right again shortly after a fault is undone (not at the next interval),
// and the mutating and validating reviews of one fresh PVC share one read. No timing thresholds
// beyond generous bounds: the figures are in bench/kopia.

import assert from "node:assert/strict";
import { rename } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import { type CatalogRefreshOutcome, createKopiaCatalog } from "../../../webhook/kopia/snapshot-catalog.ts";
import { type KopiaRepository, createKopiaRepository, findKopiaBinary, kopiaSkip } from "../../harness/kopia.ts";
import { eventually } from "../../support/eventually.ts";

const skip = kopiaSkip("v0.22.3");

describe("catalog recovery and shared misses on a real kopia v0.22.3 repository", { skip }, () => {
  let repository: KopiaRepository;

  before(async () => {
    const found = findKopiaBinary("v0.22.3");
    if (!("path" in found)) return;
    repository = await createKopiaRepository({ binaryPath: found.path, layout: "create" });
    await repository.snapshot(await repository.makeSourceDir("data", { "a.txt": "precious" }), { source: "app-backup@media:/data" });
  });
  after(async () => {
    await repository?.dispose();
  });

  function catalogOver(outcomes: CatalogRefreshOutcome[]) {
    return createKopiaCatalog({
      repositoryPath: repository.rootPath,
      passwordFile: repository.passwordFile,
      // An hour: anything sooner than this comes from the retry after a failure.
      refreshIntervalMs: 3_600_000,
      freshnessBoundMs: 3_600_000,
      missRefreshTimeoutMs: 5_000,
      onRefresh: (outcome) => outcomes.push(outcome),
    });
  }

  it("answers again soon after an unmounted repository comes back, and unknown until then", async () => {
    const hidden = `${repository.rootPath}.unmounted`;
    await rename(repository.rootPath, hidden);
    const outcomes: CatalogRefreshOutcome[] = [];
    const catalog = catalogOver(outcomes);
    try {
      await catalog.start();
      assert.equal(catalog.lookup("app-backup@media:/data", Date.now()).readable, false);
      await sleep(1_500);
      assert.ok(outcomes.length >= 2, `retried after the failure (${outcomes.length} reads)`);
      assert.ok(outcomes.every((o) => !o.ok));
      assert.equal(catalog.lookup("app-backup@media:/data", Date.now()).readable, false, "still unknown while the fault lasts");

      await rename(hidden, repository.rootPath);
      const answer = await eventually(
        "the repository to be readable again, well before the hourly interval",
        () => {
          const lookup = catalog.lookup("app-backup@media:/data", Date.now());
          return lookup.readable ? lookup : undefined;
        },
        { timeoutMs: 20_000, intervalMs: 50 },
      );
      assert.ok(answer.readable, "readable again well before the hourly interval");
      assert.equal(answer.readable && answer.snapshots.length, 1);
    } finally {
      catalog.stop();
      await rename(hidden, repository.rootPath).catch(() => undefined);
    }
  });

  it("shares one read between the two reviews of one fresh PVC", async () => {
    const outcomes: CatalogRefreshOutcome[] = [];
    const catalog = catalogOver(outcomes);
    try {
      await catalog.start();
      await sleep(1_100); // past the start's own read, as a PVC created later would be
      const before = outcomes.length;
      const mutate = await catalog.lookupWithRefreshOnMiss("new-app-backup@media:/data", Date.now());
      const validate = await catalog.lookupWithRefreshOnMiss("new-app-backup@media:/data", Date.now());
      assert.equal(outcomes.length - before, 1, "one read for both misses");
      assert.ok(mutate.readable && validate.readable);
      assert.deepEqual([mutate.readable && mutate.snapshots.length, validate.readable && validate.snapshots.length], [0, 0]);
      // A snapshot taken later is seen by the next miss once the window has passed.
      await repository.snapshot(await repository.makeSourceDir("late", { "b.txt": "late" }), { source: "new-app-backup@media:/data" });
      await sleep(1_100);
      const later = await catalog.lookupWithRefreshOnMiss("new-app-backup@media:/data", Date.now());
      assert.equal(later.readable && later.snapshots.length, 1);
    } finally {
      catalog.stop();
    }
  });
});
