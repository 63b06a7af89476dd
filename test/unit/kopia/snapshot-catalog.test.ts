import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { BlobStore } from "../../../webhook/kopia/blob-store.ts";
import { RepositoryError } from "../../../webhook/kopia/repository-error.ts";
import { type CatalogRefreshOutcome, createKopiaCatalog } from "../../../webhook/kopia/snapshot-catalog.ts";
import type { Logger } from "../../../webhook/domain/logger.ts";
import { createRecordingLogger } from "../../support/recording-logger.ts";

/** A store whose format-blob reads wait until the test releases them, then fail or succeed. */
function createGatedStore() {
  const waiting: ((error: Error) => void)[] = [];
  let reads = 0;
  const store: BlobStore = {
    location: "gated",
    list: async () => [],
    read: () => {
      reads++;
      return new Promise<Buffer>((_resolve, reject) => waiting.push(reject));
    },
    readRange: async () => Buffer.alloc(0),
  };
  return {
    store,
    reads: () => reads,
    fail: (error: Error) => waiting.splice(0).forEach((reject) => reject(error)),
  };
}

describe("kopia catalog", () => {
  let dir: string;
  let passwordFile: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "pvc-guardian-catalog-"));
    passwordFile = join(dir, "password");
    await writeFile(passwordFile, "secret\n");
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  function createCatalog(store: BlobStore, outcomes: CatalogRefreshOutcome[] = [], log?: Logger) {
    return createKopiaCatalog({
      repositoryPath: "/repository",
      passwordFile,
      refreshIntervalMs: 3_600_000,
      freshnessBoundMs: 60_000,
      missRefreshTimeoutMs: 50,
      store,
      onRefresh: (o) => outcomes.push(o),
      ...(log === undefined ? {} : { log }),
    });
  }

  it("is unreadable before its first read, never an empty answer", () => {
    const catalog = createCatalog(createGatedStore().store);
    const answer = catalog.lookup("app@ns:/data", Date.now());
    assert.deepEqual(answer, { readable: false, reason: "the Kopia snapshot catalog has not read the repository yet" });
    assert.deepEqual(catalog.health(), {
      lastSuccessMs: null,
      lastError: null,
      ageMs: null,
      sources: 0,
      snapshots: 0,
      lastRefreshDurationMs: null,
      refreshFailuresTotal: 0,
      blobsRead: 0,
    });
  });

  it("shares one read between concurrent refreshes", async () => {
    const gated = createGatedStore();
    const outcomes: CatalogRefreshOutcome[] = [];
    const catalog = createCatalog(gated.store, outcomes);
    const first = catalog.refresh();
    const second = catalog.refresh();
    assert.equal(first, second);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(gated.reads(), 1);
    gated.fail(new RepositoryError("permission-denied", "kopia.repository: permission denied"));
    const outcome = await first;
    assert.equal(outcome.ok, false);
    assert.equal(outcomes.length, 1);
    assert.equal(catalog.health().refreshFailuresTotal, 1);
    assert.equal(catalog.health().lastError, "permission-denied: kopia.repository: permission denied");
    const answer = catalog.lookup("app@ns:/data", Date.now());
    assert.ok(!answer.readable && answer.reason.includes("permission-denied"));
  });

  it("bounds the refresh on a miss by its deadline and answers unreadable meanwhile", async () => {
    const gated = createGatedStore();
    const catalog = createCatalog(gated.store);
    const started = performance.now();
    const answer = await catalog.lookupWithRefreshOnMiss("app@ns:/data", Date.now());
    assert.ok(performance.now() - started < 5_000);
    assert.equal(answer.readable, false);
    assert.equal(gated.reads(), 1, "the refresh started");
    gated.fail(new RepositoryError("io", "done"));
  });

  it("never throws from start, recording the failure instead", async () => {
    const store: BlobStore = {
      location: "broken",
      list: async () => [],
      read: async () => {
        throw new Error("unexpected failure");
      },
      readRange: async () => Buffer.alloc(0),
    };
    const catalog = createCatalog(store);
    await catalog.start();
    catalog.stop();
    assert.equal(catalog.health().lastError, "unexpected failure");
    assert.equal(catalog.lookup("a@b:/c", Date.now()).readable, false);
  });

  it("logs a failed read once, as a warning carrying the error itself", async () => {
    const failure = new RepositoryError("wrong-password", "the password does not open the repository");
    const store: BlobStore = {
      location: "locked",
      list: async () => [],
      read: async () => {
        throw failure;
      },
      readRange: async () => Buffer.alloc(0),
    };
    const log = createRecordingLogger();
    const catalog = createCatalog(store, [], log);
    await catalog.start();
    catalog.stop();
    assert.deepEqual(
      log.entries.map((entry) => [entry.level, entry.message]),
      [["warn", "snapshot catalog refresh failed"]],
    );
    assert.equal(log.entries[0]!.fields["err"], failure);
  });
});
