// Real repositories made by the real kopia binary: our listing must equal kopia's, and the
// catalog must give every identity exactly kopia's snapshots.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { after, describe, it } from "node:test";
import { createFilesystemBlobStore } from "../../../webhook/kopia/filesystem-blob-store.ts";
import { createKopiaCatalog } from "../../../webhook/kopia/snapshot-catalog.ts";
import {
  type KopiaEncryption,
  type KopiaRepository,
  type KopiaRepositoryOptions,
  type KopiaVersion,
  createKopiaRepository,
  findKopiaBinary,
  kopiaSkip,
  loadCatalogOnce,
  readShards,
} from "../../harness/kopia.ts";
import { assertListingMatchesKopia, createRecordingBlobStore, groupByIdentity } from "./kopia-comparison.ts";
import { forEachConcurrently } from "../../../webhook/domain/bounded-concurrency.ts";

/** Identities the way VolSync's mover builds them: ReplicationSource name (≤ 50) @ namespace. */
const volsyncIdentities = [
  "app@default:/data",
  "postgres-data-0@team-a.prod.example.com:/data",
  "very-long-replication-source-name-for-a-database-x@a.b.c.d.e.f.g.h:/data",
  "vol_sync-default@ns-1:/data",
  "app@other-namespace:/data",
  "app@default:/srv/override",
];

const repositories: KopiaRepository[] = [];
after(async () => {
  await Promise.all(repositories.map((r) => r.dispose()));
});

async function makeRepository(version: KopiaVersion, options: Omit<KopiaRepositoryOptions, "binaryPath">) {
  const found = findKopiaBinary(version);
  if (!("path" in found)) throw new Error(found.skipReason);
  const repository = await createKopiaRepository({ binaryPath: found.path, ...options });
  repositories.push(repository);
  return repository;
}

async function takeSnapshots(repository: KopiaRepository, identities: string[], perIdentity: number) {
  const jobs = identities.flatMap((identity, i) => Array.from({ length: perIdentity }, (_, n) => ({ identity, i, n })));
  const ids: { identity: string; id: string }[] = [];
  await forEachConcurrently(jobs, 2, async ({ identity, i, n }) => {
    const dir = await repository.makeSourceDir(`src-${i}-${n}`, { "file.txt": `${identity} #${n}`, "other.bin": "x".repeat(n * 100) });
    ids.push({ identity, id: await repository.snapshot(dir, { source: identity }) });
  });
  return ids;
}

/** Every identity kopia lists gets exactly those snapshot IDs from the catalog, in start order. */
async function assertCatalogMatches(repository: KopiaRepository, expected: ReturnType<typeof groupByIdentity>) {
  const catalog = await loadCatalogOnce(repository);
  assert.equal(catalog.health().lastError, null);
  const nowMs = Date.now();
  for (const [identity, snapshots] of expected) {
    const answer = catalog.lookup(identity, nowMs);
    assert.ok(answer.readable, `catalog unreadable for ${identity}`);
    assert.deepEqual(
      answer.snapshots.map((s) => s.id),
      snapshots.map((s) => s.id),
      identity,
    );
    assert.ok(answer.snapshots.every((s) => !s.incomplete && s.startTimeMs > 0));
  }
  const never = catalog.lookup("nobody@nowhere:/data", nowMs);
  assert.ok(never.readable && never.snapshots.length === 0, "an identity without snapshots is an authoritative empty answer");
  assert.equal(catalog.health().sources, expected.size);
}

const matrix: { version: KopiaVersion; layout: "create" | "connect-then-create"; encryption: KopiaEncryption; shards: number[] }[] = [
  { version: "v0.22.3", layout: "create", encryption: "AES256-GCM-HMAC-SHA256", shards: [1, 3] },
  { version: "v0.22.3", layout: "connect-then-create", encryption: "CHACHA20-POLY1305-HMAC-SHA256", shards: [3, 3] },
  { version: "v0.21.1", layout: "create", encryption: "CHACHA20-POLY1305-HMAC-SHA256", shards: [1, 3] },
  { version: "v0.21.1", layout: "connect-then-create", encryption: "AES256-GCM-HMAC-SHA256", shards: [3, 3] },
];

for (const row of matrix) {
  describe(`kopia ${row.version}, ${row.layout}, ${row.encryption}`, { skip: kopiaSkip(row.version) }, () => {
    it("lists what kopia lists through snapshots, deletions and full maintenance", async () => {
      const repository = await makeRepository(row.version, { layout: row.layout, encryption: row.encryption });
      assert.deepEqual(((await readShards(repository.rootPath)) as { default: number[] }).default, row.shards);

      const empty = await assertListingMatchesKopia(repository);
      assert.deepEqual(empty, []);

      const identities = row.version === "v0.22.3" ? volsyncIdentities : volsyncIdentities.slice(0, 3);
      const taken = await takeSnapshots(repository, identities, 2);
      // Mass-copied history, as after a namespace rename: many sources at once.
      await repository.run(["snapshot", "copy-history", "@default", "@renamed.namespace"]);
      await assertListingMatchesKopia(repository);

      await repository.deleteSnapshot(taken[0]!.id);
      await repository.deleteSnapshot(taken[3]!.id);
      const afterDelete = await assertListingMatchesKopia(repository);
      assert.ok(!afterDelete.some((s) => s.id === taken[0]!.id || s.id === taken[3]!.id), "deleted snapshots stay deleted");

      await repository.runFullMaintenance();
      const afterMaintenance = await assertListingMatchesKopia(repository);
      assert.deepEqual(afterMaintenance, afterDelete);
      await assertCatalogMatches(repository, groupByIdentity(afterMaintenance));
    });
  });
}

describe("kopia v0.22.3, format version 1 (compaction-log index) with pbkdf2", { skip: kopiaSkip("v0.22.3") }, () => {
  it("lists what kopia lists before and after index compaction", async () => {
    const repository = await makeRepository("v0.22.3", { layout: "connect-then-create", formatVersion: 1, keyDerivation: "pbkdf2-sha256-600000" });
    const taken = await takeSnapshots(repository, volsyncIdentities.slice(0, 3), 2);
    await repository.deleteSnapshot(taken[1]!.id);
    const store = createFilesystemBlobStore({ rootPath: repository.rootPath });
    assert.ok((await store.list("n")).length >= 3, "format version 1 keeps its index in n blobs");
    assert.deepEqual(await store.list("x"), [], "and has no epoch index blobs");
    await assertListingMatchesKopia(repository);
    await repository.runFullMaintenance();
    assert.equal((await store.list("n")).length, 1, "full maintenance compacted the n blobs into one");
    const listed = await assertListingMatchesKopia(repository);
    await assertCatalogMatches(repository, groupByIdentity(listed));
  });
});

describe("retention reasons against kopia v0.22.3", { skip: kopiaSkip("v0.22.3") }, () => {
  it("computes kopia's retention reasons under global, host, user and path policies", async () => {
    const repository = await makeRepository("v0.22.3", { layout: "create" });
    await repository.run([
      "policy",
      "set",
      "--global",
      "--keep-latest=4",
      "--keep-hourly=3",
      "--keep-daily=5",
      "--keep-weekly=3",
      "--keep-monthly=6",
      "--keep-annual=2",
    ]);
    await repository.run(["policy", "set", "@other.namespace", "--keep-daily=2"]);
    await repository.run(["policy", "set", "db@other.namespace", "--keep-latest=1"]);
    await repository.run(["policy", "set", "app@default:/data", "--keep-monthly=1", "--keep-annual=0"]);
    const dir = await repository.makeSourceDir("history", { "a.txt": "history" });
    // Start times spread over two years: same hour, same day, same ISO week, month ends, year ends.
    const starts = [
      "2024-12-30 23:10:00 UTC",
      "2025-01-01 00:05:00 UTC",
      "2025-01-31 12:00:00 UTC",
      "2025-03-02 08:00:00 UTC",
      "2025-06-15 10:00:00 UTC",
      "2025-06-15 10:30:00 UTC",
      "2025-06-15 11:00:00 UTC",
      "2025-06-16 09:00:00 UTC",
      "2025-12-29 07:00:00 UTC",
      "2026-01-04 07:00:00 UTC",
      "2026-02-28 22:00:00 UTC",
    ];
    const sources = ["app@default:/data", "db@other.namespace:/data", "web@other.namespace:/srv/www"];
    await forEachConcurrently(sources, 2, async (source) => {
      for (const start of starts) await repository.snapshot(dir, { source, startTime: start });
    });
    await assertListingMatchesKopia(repository);
    // The comparison means something only if kopia's answer uses every kind of reason.
    const reasons = (JSON.parse(await repository.listSnapshotsJson()) as { retentionReason?: string[] }[]).flatMap((s) => s.retentionReason ?? []);
    for (const kind of ["latest", "hourly", "daily", "weekly", "monthly", "annual"]) {
      assert.ok(
        reasons.some((r) => r.startsWith(`${kind}-`)),
        `no ${kind} reason in ${JSON.stringify(reasons)}`,
      );
    }
  });
});

describe("a password that ends with a newline, as KOPIA_PASSWORD may carry it", { skip: kopiaSkip("v0.22.3") }, () => {
  it("opens it whichever way kopia took the newline", async () => {
    const repository = await makeRepository("v0.22.3", { layout: "create", password: "ends with a newline\n" });
    await takeSnapshots(repository, ["app@default:/data"], 1);
    assert.equal(await readFile(repository.passwordFile, "utf8"), "ends with a newline\n");
    await assertListingMatchesKopia(repository);
  });
});

describe("a password with surrounding whitespace and non-ASCII characters", { skip: kopiaSkip("v0.22.3") }, () => {
  it("opens the repository as kopia does, trimming what Go's strings.TrimSpace trims", async () => {
    // kopia is handed this text in KOPIA_PASSWORD, as the mover is from the Secret, and trims it.
    const given = "  pässwörd ✓ geheim \t";
    const repository = await makeRepository("v0.22.3", { layout: "create", password: given });
    await takeSnapshots(repository, ["app@default:/data", "db@other.namespace:/data"], 2);
    // The mounted file holds the same text with more whitespace around it, some of it
    // non-ASCII (NO-BREAK SPACE, NEXT LINE, IDEOGRAPHIC SPACE), and the newline an editor adds.
    await writeFile(repository.passwordFile, `\u00a0${given}\u0085\u3000\n`);
    const kopiaListing = (JSON.parse(await repository.listSnapshotsJson()) as Parameters<typeof groupByIdentity>[0]).map(
      ({ retentionReason: _computed, ...rest }) => rest,
    );
    assert.equal(kopiaListing.length, 4);
    await assertCatalogMatches(repository, groupByIdentity(kopiaListing));
    assert.deepEqual(await assertListingMatchesKopia(repository), kopiaListing);
  });
});

describe("incomplete snapshots from kopia v0.22.3", { skip: kopiaSkip("v0.22.3") }, () => {
  it("lists them as kopia does and flags them in the catalog", async () => {
    const repository = await makeRepository("v0.22.3", { layout: "connect-then-create" });
    const small = await repository.makeSourceDir("small", { "a.txt": "small" });
    const large = await repository.makeSourceDir("large", { "a.bin": randomBytes(3 << 20).toString("base64") });
    const complete = await repository.snapshot(small, { source: "app@default:/data" });
    // An upload limit stops the snapshot early: kopia saves it with incomplete "limit reached".
    const cut = await repository.snapshot(large, { source: "app@default:/data", uploadLimitMb: 1 });
    const onlyCut = await repository.snapshot(large, { source: "half@default:/data", uploadLimitMb: 1 });
    const listed = await assertListingMatchesKopia(repository);
    assert.deepEqual(
      listed
        .filter((s) => s.incomplete !== undefined)
        .map((s) => s.id)
        .sort(),
      [cut, onlyCut].sort(),
    );

    const catalog = await loadCatalogOnce(repository);
    const app = catalog.lookup("app@default:/data", Date.now());
    assert.ok(app.readable);
    assert.deepEqual(
      app.snapshots.map((s) => [s.id, s.incomplete]),
      [
        [complete, false],
        [cut, true],
      ],
    );
    const half = catalog.lookup("half@default:/data", Date.now());
    assert.ok(half.readable);
    assert.deepEqual(
      half.snapshots.map((s) => [s.id, s.incomplete]),
      [[onlyCut, true]],
    );
  });
});

describe("incremental refresh against kopia v0.22.3", { skip: kopiaSkip("v0.22.3") }, () => {
  it("reads only new blobs after a new snapshot, and only the format blob when nothing changed", async () => {
    const repository = await makeRepository("v0.22.3", { layout: "connect-then-create" });
    await takeSnapshots(repository, volsyncIdentities.slice(0, 2), 2);
    const recording = createRecordingBlobStore(createFilesystemBlobStore({ rootPath: repository.rootPath }));
    const catalog = createKopiaCatalog({
      repositoryPath: repository.rootPath,
      passwordFile: repository.passwordFile,
      refreshIntervalMs: 3_600_000,
      freshnessBoundMs: 60_000,
      missRefreshTimeoutMs: 5_000,
      store: recording.store,
    });
    await catalog.start();
    catalog.stop();
    const coldReads = new Set(recording.takeReads());
    assert.ok(coldReads.size > 2);

    const unchanged = await catalog.refresh();
    assert.ok(unchanged.ok);
    assert.deepEqual(recording.takeReads(), ["kopia.repository"]);

    const newIdentity = "fresh-app@new.namespace:/data";
    assert.deepEqual(catalog.lookup(newIdentity, Date.now()), { readable: true, snapshots: [], refreshedAtMs: catalog.health().lastSuccessMs });
    const dir = await repository.makeSourceDir("new", { "a.txt": "new data" });
    const newId = await repository.snapshot(dir, { source: newIdentity });

    // A miss triggers one bounded refresh that finds the snapshot taken a moment ago.
    const found = await catalog.lookupWithRefreshOnMiss(newIdentity, Date.now());
    assert.ok(found.readable);
    assert.deepEqual(
      found.snapshots.map((s) => s.id),
      [newId],
    );
    const incrementalReads = recording.takeReads();
    assert.ok(incrementalReads.length >= 3, `expected the format blob, a new index blob and a manifest: ${incrementalReads}`);
    for (const read of incrementalReads.filter((r) => r !== "kopia.repository")) {
      assert.ok(!coldReads.has(read), `${read} was read again`);
    }
    assert.equal(catalog.health().snapshots, 5);
  });
});
