// Repositories with kopia's REED-SOLOMON-CRC32 error correction, on a folder and on S3: listed as
// kopia lists them, a damaged shard repaired from parity as kopia repairs it, and damage beyond
// repair reported as corrupt (so the catalog answers unknown), never as fewer snapshots.

import assert from "node:assert/strict";
import { open, readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { createFilesystemBlobStore, parseShardingParameters, shardedRelativePath } from "../../../webhook/kopia/filesystem-blob-store.ts";
import { requireBinary } from "../../harness/binaries.ts";
import { type KopiaRepository, createKopiaRepository, createKopiaS3Repository, kopiaSkip } from "../../harness/kopia.ts";
import { startVersityGw, versityGwSkip } from "../../harness/versitygw.ts";
import { assertListingMatchesKopia, runOurListing } from "./kopia-comparison.ts";

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function snapshotSome(repository: KopiaRepository) {
  for (const [i, identity] of ["app@default:/data", "db@team-a:/data", "app@default:/data"].entries()) {
    const dir = await repository.makeSourceDir(`src-${i}`, { "a.txt": `${identity} ${i}`, "b.bin": "y".repeat(i * 20_000) });
    await repository.snapshot(dir, { source: identity });
  }
}

/** Flips one byte at each offset (counted from the end when negative) of a blob's file. */
async function flipBytes(repository: KopiaRepository, blobId: string, offsets: number[]) {
  const sharding = parseShardingParameters(await readFile(join(repository.rootPath, ".shards"), "utf8"));
  const path = join(repository.rootPath, shardedRelativePath(blobId, sharding));
  const handle = await open(path, "r+");
  try {
    const { size } = await handle.stat();
    for (const offset of offsets) {
      const at = offset < 0 ? size + offset : offset;
      const byte = Buffer.alloc(1);
      await handle.read(byte, 0, 1, at);
      byte[0] = byte[0]! ^ 0x5a;
      await handle.write(byte, 0, 1, at);
    }
    return size;
  } finally {
    await handle.close();
  }
}

describe("error-correcting filesystem repositories", { skip: kopiaSkip() }, () => {
  for (const overheadPercent of [1, 2, 10, 100]) {
    it(`lists what kopia lists with --ecc-overhead-percent=${overheadPercent}`, async () => {
      const repository = await createKopiaRepository({ binaryPath: requireBinary("kopia"), layout: "create", eccOverheadPercent: overheadPercent });
      cleanups.push(() => repository.dispose());
      await snapshotSome(repository);
      await assertListingMatchesKopia(repository);
    });
  }

  it("repairs a damaged data shard from parity as kopia does, and reports damage beyond repair as corrupt", async () => {
    const repository = await createKopiaRepository({ binaryPath: requireBinary("kopia"), layout: "create", eccOverheadPercent: 10 });
    cleanups.push(() => repository.dispose());
    await snapshotSome(repository);
    const before = await repository.listSnapshotsJson();
    const indexBlobs = await createFilesystemBlobStore({ rootPath: repository.rootPath }).list("xn");
    const sizes = await Promise.all(indexBlobs.map(async (b) => ({ b, size: await flipBytes(repository, b.id, []) })));
    const indexBlob = sizes.sort((x, y) => x.size - y.size)[0]?.b;
    assert.ok(indexBlob, "the repository has an index blob");

    // The last stored byte lies in the last data shard (data follows all parity shards).
    await flipBytes(repository, indexBlob.id, [-1]);
    // kopia keeps index blobs in its local cache: clear it so kopia reads the damaged bytes too.
    await repository.run(["cache", "clear"]);
    assert.equal(await repository.listSnapshotsJson(), before, "kopia repairs one damaged shard");
    await assertListingMatchesKopia(repository);

    // Index blobs this small use 6 data + 2 parity shards: three damaged data shards are beyond repair.
    const size = await flipBytes(repository, indexBlob.id, []);
    // kopia's threshold for the small-blob geometry at 10%: (6 + 2) × (4 + ⌈8 × (128 + 4) / 6⌉) bytes.
    assert.ok(size <= 1440, `index blob ${indexBlob.id} is ${size} bytes, too large for the 6+2 geometry this test damages`);
    const shardStride = Math.ceil(size / 8);
    await flipBytes(repository, indexBlob.id, [2 * shardStride + 5, 3 * shardStride + 5, 4 * shardStride + 5]);
    const ours = await runOurListing(repository);
    assert.equal(ours.exitCode, 1);
    assert.match(ours.stderr, /\(corrupt\).*fails its CRC32 checks in more shards than its error correction can repair/);
    await repository.run(["cache", "clear"]);
    await assert.rejects(repository.listSnapshotsJson(), "kopia cannot read it either");
  });
});

describe("an error-correcting S3 repository", { skip: versityGwSkip() }, () => {
  it("lists what kopia lists", async () => {
    const server = await startVersityGw();
    cleanups.push(() => server.dispose());
    await server.createBucket("ecc");
    const repository = await createKopiaS3Repository({
      binaryPath: requireBinary("kopia"),
      eccOverheadPercent: 5,
      location: { bucket: "ecc", prefix: "app/", endpoint: server.endpoint, accessKey: server.accessKey, secretKey: server.secretKey, useTls: false },
    });
    cleanups.push(() => repository.dispose());
    await snapshotSome(repository);
    assert.equal((await assertListingMatchesKopia(repository)).length, 3);
  });
});
