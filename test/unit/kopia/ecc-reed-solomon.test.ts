import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isRepositoryError } from "../../../webhook/kopia/repository-error.ts";
import { computeShards, createEccDecoder } from "../../../webhook/kopia/ecc-reed-solomon.ts";

describe("computeShards", () => {
  // kopia's own expectations (repo/ecc/ecc_utils_test.go, TestComputeShares).
  for (const [overhead, data, parity] of [
    [0.1, 254, 2],
    [1, 200, 2],
    [2, 128, 2],
    [10, 128, 12],
  ] as const) {
    it(`gives ${data} data and ${parity} parity shards for ${overhead}%`, () => {
      assert.deepEqual(computeShards(overhead), { data, parity });
    });
  }
});

describe("createEccDecoder", () => {
  it("refuses bytes whose every shard fails its CRC32 as corrupt", () => {
    assert.throws(
      () => createEccDecoder(10).decode(Buffer.alloc(400, 7), "blob x"),
      (e) => isRepositoryError(e, "corrupt") && /blob x/.test(e.message),
    );
  });
  it("refuses an overhead kopia does not allow", () => {
    assert.throws(
      () => createEccDecoder(0),
      (e) => isRepositoryError(e, "unsupported"),
    );
  });
});
