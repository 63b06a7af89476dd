import assert from "node:assert/strict";
import { deflateRawSync, gzipSync, zstdCompressSync } from "node:zlib";
import { describe, it } from "node:test";
import { decompressContent } from "../../../webhook/kopia/content-compression.ts";
import { isRepositoryError } from "../../../webhook/kopia/repository-error.ts";

function framed(headerId: number, stream: Buffer): Buffer {
  const header = Buffer.alloc(4);
  header.writeUInt32BE(headerId);
  return Buffer.concat([header, stream]);
}

describe("content decompression", () => {
  const payload = Buffer.from('{"entries":[]}'.repeat(50));
  const table: [string, number, Buffer][] = [
    ["zstd-fastest (what kopia asks for on manifests)", 0x1101, zstdCompressSync(payload)],
    ["gzip", 0x1000, gzipSync(payload)],
    ["pgzip", 0x1300, gzipSync(payload)],
    ["deflate", 0x1500, deflateRawSync(payload)],
  ];
  for (const [name, id, stream] of table) {
    it(`decodes ${name}`, () => {
      assert.deepEqual(decompressContent(id, framed(id, stream), "c"), payload);
    });
  }
  it("passes uncompressed content through", () => {
    assert.deepEqual(decompressContent(0, payload, "c"), payload);
  });
  it("refuses a header that disagrees with the index", () => {
    assert.throws(
      () => decompressContent(0x1101, framed(0x1000, gzipSync(payload)), "c"),
      (e) => isRepositoryError(e, "corrupt"),
    );
  });
  it("refuses compressions it cannot decode (s2, lz4) instead of guessing", () => {
    assert.throws(
      () => decompressContent(0x1200, framed(0x1200, payload), "c"),
      (e) => isRepositoryError(e, "unsupported"),
    );
    assert.throws(
      () => decompressContent(0x1400, framed(0x1400, payload), "c"),
      (e) => isRepositoryError(e, "unsupported"),
    );
  });
  it("reports a damaged stream as corrupt", () => {
    assert.throws(
      () => decompressContent(0x1101, framed(0x1101, Buffer.from("not zstd")), "c"),
      (e) => isRepositoryError(e, "corrupt"),
    );
  });
});
