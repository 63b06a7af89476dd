import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { BlobMetadata, BlobStore } from "../../../webhook/kopia/blob-store.ts";
import { isRepositoryError } from "../../../webhook/kopia/repository-error.ts";
import { firstCompleteSet, selectCompactionLogIndexBlobs, selectEpochIndexBlobs } from "../../../webhook/kopia/index-blob-set.ts";

const blobs = (...ids: string[]): BlobMetadata[] => ids.map((id) => ({ id, lengthBytes: 1 }));
const h = (n: number) => n.toString(16).padStart(32, "0");
const ids = (set: { blobs: BlobMetadata[] }) => set.blobs.map((b) => b.id).sort();

describe("complete sets", () => {
  it("completes a set once its count of members is listed", () => {
    assert.equal(firstCompleteSet(blobs(`xs0_${h(1)}-sa-c2`)), undefined);
    assert.deepEqual(
      firstCompleteSet(blobs(`xs0_${h(1)}-sa-c2`, `xs0_${h(2)}-sb-c1`, `xs0_${h(3)}-sa-c2`))!.map((b) => b.id),
      [`xs0_${h(2)}-sb-c1`],
    );
    assert.deepEqual(firstCompleteSet(blobs(`xs0_${h(1)}-sa-c2`, `xs0_${h(3)}-sa-c2`))!.length, 2);
  });
  it("treats a name outside the convention as a set of its own", () => {
    assert.deepEqual(
      firstCompleteSet(blobs(`xs0_${h(1)}`))!.map((b) => b.id),
      [`xs0_${h(1)}`],
    );
  });
});

describe("epoch index selection", () => {
  it("uses every uncompacted blob of epochs 0..W+1 when nothing is compacted", () => {
    const listing = blobs("xe0", "xe1", `xn0_${h(1)}-s1-c1`, `xn1_${h(2)}-s2-c1`, `xn2_${h(3)}-s3-c1`);
    // W = 1, so epochs 0, 1 and 2 count.
    assert.deepEqual(ids(selectEpochIndexBlobs(listing)), [`xn0_${h(1)}-s1-c1`, `xn1_${h(2)}-s2-c1`, `xn2_${h(3)}-s3-c1`]);
  });

  it("refuses index blobs beyond the epoch after the newest marker instead of ignoring them", () => {
    const listing = blobs("xe1", `xn0_${h(1)}-s1-c1`, `xn3_${h(4)}-s4-c1`);
    assert.throws(
      () => selectEpochIndexBlobs(listing),
      (e) => isRepositoryError(e, "corrupt"),
    );
  });

  it("prefers a complete single-epoch compaction of a settled epoch over its superseded blobs", () => {
    const listing = blobs("xe3", `xn0_${h(1)}-s1-c1`, `xn0_${h(2)}-s2-c1`, `xs0_${h(9)}-sc-c1`, `xn1_${h(3)}-s3-c1`, `xs1_${h(8)}-sd-c2`, `xn3_${h(4)}-s4-c1`);
    // Epoch 0 is settled (≤ W-2 = 1) and compacted; epoch 1 is settled but its compaction is
    // incomplete (1 of 2), so its uncompacted blob stays.
    assert.deepEqual(ids(selectEpochIndexBlobs(listing)), [`xn1_${h(3)}-s3-c1`, `xn3_${h(4)}-s4-c1`, `xs0_${h(9)}-sc-c1`].sort());
  });

  it("ignores the compaction of an epoch that is not settled yet", () => {
    const listing = blobs("xe1", `xn0_${h(1)}-s1-c1`, `xs0_${h(9)}-sc-c1`);
    assert.deepEqual(ids(selectEpochIndexBlobs(listing)), [`xn0_${h(1)}-s1-c1`]);
  });

  it("starts after the longest chain of range checkpoints", () => {
    const listing = blobs(
      "xe9",
      `xr0_3_${h(1)}-sr1-c1`,
      `xr4_6_${h(2)}-sr2-c1`,
      `xr0_5_${h(3)}-sr3-c2`, // incomplete: ignored
      `xn2_${h(4)}-s1-c1`, // superseded by the range
      `xn7_${h(5)}-s2-c1`,
      `xn8_${h(6)}-s3-c1`,
      `xn10_${h(7)}-s4-c1`,
      "xw1700000000",
      "xw1700000500",
    );
    const set = selectEpochIndexBlobs(listing);
    assert.deepEqual(ids(set), [`xn10_${h(7)}-s4-c1`, `xn7_${h(5)}-s2-c1`, `xn8_${h(6)}-s3-c1`, `xr0_3_${h(1)}-sr1-c1`, `xr4_6_${h(2)}-sr2-c1`]);
    assert.equal(set.deletionWatermarkSeconds, 1700000500);
  });

  it("ignores a lone [0,0] range, as kopia does", () => {
    const set = selectEpochIndexBlobs(blobs(`xr0_0_${h(1)}-sr-c1`, `xn0_${h(2)}-s1-c1`));
    assert.deepEqual(ids(set), [`xn0_${h(2)}-s1-c1`]);
  });
});

describe("compaction-log index selection", () => {
  function storeWith(listing: string[]): BlobStore {
    return {
      location: "memory",
      list: async (prefix) => blobs(...listing.filter((id) => id.startsWith(prefix))),
      read: async () => Buffer.alloc(0),
      readRange: async () => Buffer.alloc(0),
    };
  }
  it("drops inputs of a compaction whose outputs all exist, and keeps them otherwise", async () => {
    const listing = [`n${h(1)}-s1`, `n${h(2)}-s2`, `n${h(3)}`, `n${h(4)}-s4`, `m${h(10)}`, `m${h(11)}`];
    const logs: Record<string, { inputIds: string[]; outputIds: string[] }> = {
      [`m${h(10)}`]: { inputIds: [`n${h(1)}-s1`, `n${h(2)}-s2`], outputIds: [`n${h(3)}`] },
      [`m${h(11)}`]: { inputIds: [`n${h(4)}-s4`], outputIds: [`n${h(99)}`] }, // output missing: ignored
    };
    const set = await selectCompactionLogIndexBlobs(storeWith(listing), async (blob) => logs[blob.id]!);
    assert.deepEqual(ids(set), [`n${h(3)}`, `n${h(4)}-s4`]);
  });
  it("skips the poison blob an upgrade leaves behind", async () => {
    const poison = "n00000000000000000000000000000000-repository_unreadable_by_this_kopia_version_upgrade_required";
    const set = await selectCompactionLogIndexBlobs(storeWith([poison, `n${h(5)}`]), async () => ({ inputIds: [], outputIds: [] }));
    assert.deepEqual(ids(set), [`n${h(5)}`]);
  });
});
