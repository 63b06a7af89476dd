import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, it } from "node:test";
import { createFilesystemBlobStore, parseShardingParameters, shardedRelativePath } from "../../../webhook/kopia/filesystem-blob-store.ts";
import { isRepositoryError } from "../../../webhook/kopia/repository-error.ts";

const fixtures = new URL("./fixtures/", import.meta.url);
const dirs: string[] = [];
after(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function repositoryWith(files: Record<string, string>): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), "pvc-guardian-blobs-"));
  dirs.push(root);
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), content);
  }
  return root;
}

describe("sharded paths", () => {
  it("maps blob IDs as the real [1,3] and [3,3] repositories lay them out", async () => {
    const oneThree = parseShardingParameters(await readFile(new URL("kopia-android-edge_case_repo/.shards", fixtures), "utf8"));
    const threeThree = parseShardingParameters(await readFile(new URL("kopia-android-v1_test_repo/.shards", fixtures), "utf8"));
    assert.equal(
      shardedRelativePath("q167da1fb248501e55883548496602313-sf7bc46f9e28f2be813d", oneThree),
      "q/167/da1fb248501e55883548496602313-sf7bc46f9e28f2be813d.f",
    );
    assert.equal(
      shardedRelativePath("n070452b1e248dc73f11cb1f30610afed-sa8c5b132fec1a67c13d", threeThree),
      "n07/045/2b1e248dc73f11cb1f30610afed-sa8c5b132fec1a67c13d.f",
    );
    assert.equal(shardedRelativePath("kopia.repository", threeThree), "kopia.repository.f");
    assert.equal(shardedRelativePath("xw1769767457", oneThree), "xw1769767457.f");
  });

  it("honours overrides and refuses unknown .shards fields", () => {
    const parameters = parseShardingParameters('{"default":[1,3],"maxNonShardedLength":20,"overrides":[{"prefix":"x","shards":[2]}]}');
    assert.equal(shardedRelativePath("xn0_0123456789abcdef0123456789abcdef-s1-c1", parameters), "xn/0_0123456789abcdef0123456789abcdef-s1-c1.f");
    assert.throws(
      () => parseShardingParameters('{"default":[1,3],"compression":"zstd"}'),
      (e) => isRepositoryError(e, "unsupported"),
    );
    assert.throws(
      () => parseShardingParameters("[1,3"),
      (e) => isRepositoryError(e, "corrupt"),
    );
  });
});

describe("filesystem blob store", () => {
  const indexId = "xn0_0123456789abcdef0123456789abcdef-s0123456789abcdef-c1";
  const packId = "q0123456789abcdef0123456789abcdef-s0123456789abcdef";

  it("lists by prefix across shard folders, ignoring temporary and foreign files", async () => {
    const root = await repositoryWith({
      ".shards": '{"default":[1,3],"maxNonShardedLength":20}',
      "kopia.repository.f": "{}",
      "xe1.f": "epoch-marker",
      [`x/n0_/0123456789abcdef0123456789abcdef-s0123456789abcdef-c1.f`]: "index",
      [`x/n0_/0123456789abcdef0123456789abcdef-s0123456789abcdef-c1.f.tmp.0011223344556677`]: "partial",
      [`q/012/3456789abcdef0123456789abcdef-s0123456789abcdef.f`]: "0123456789",
      "_/log/_20260101000000_0000_1_2_1_0123.f": "log",
      README: "not a blob",
    });
    const store = createFilesystemBlobStore({ rootPath: root });
    assert.deepEqual(
      (await store.list("x")).map((b) => b.id),
      ["xe1", indexId],
    );
    assert.deepEqual(
      (await store.list("xn")).map((b) => b.id),
      [indexId],
    );
    assert.deepEqual(await store.list("q"), [{ id: packId }]);
    assert.deepEqual(await store.readRange(packId, 2, 3), Buffer.from("234"));
    await assert.rejects(store.readRange(packId, 8, 3), (e) => isRepositoryError(e, "corrupt"));
    await assert.rejects(store.read("xn0_ffffffffffffffffffffffffffffffff-s1-c1"), (e) => isRepositoryError(e, "not-found"));
  });

  it("finds blobs without .shards by probing [3,3], [1,3] and flat", async () => {
    for (const path of [
      "q01/234/56789abcdef0123456789abcdef-s0123456789abcdef.f",
      "q/012/3456789abcdef0123456789abcdef-s0123456789abcdef.f",
      "q0123456789abcdef0123456789abcdef-s0123456789abcdef.f",
    ]) {
      const root = await repositoryWith({ [path]: "pack" });
      assert.deepEqual(await createFilesystemBlobStore({ rootPath: root }).read(packId), Buffer.from("pack"), path);
    }
  });

  it("reports a missing repository folder as not-found, never as empty", async () => {
    const store = createFilesystemBlobStore({ rootPath: join(tmpdir(), "pvc-guardian-no-such-repository") });
    await assert.rejects(store.list("x"), (e) => isRepositoryError(e, "not-found"));
  });
});
