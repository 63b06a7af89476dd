// Index layouts assembled by hand, field by field, following kopia's index_v1.go/index_v2.go
// builders (all big-endian), so each offset can be checked against the Go source.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type IndexEntry, mergeLiveEntries, parseIndexEntries } from "../../../webhook/kopia/content-index.ts";
import { isRepositoryError } from "../../../webhook/kopia/repository-error.ts";

type Row = {
  prefix: string;
  hashHex: string;
  timestamp: number;
  deleted?: boolean;
  pack: string;
  offset: number;
  packed: number;
  original?: number;
  format?: number;
};

function key(row: Row): Buffer {
  return Buffer.concat([Buffer.from([row.prefix === "" ? 0 : row.prefix.charCodeAt(0)]), Buffer.from(row.hashHex, "hex")]);
}

function sortRows(rows: Row[]) {
  return [...rows].sort((a, b) => Buffer.compare(key(a), key(b)));
}

/** v1: header(8) ‖ entries(key ‖ 20-byte value) ‖ pack names ‖ 32 random bytes. */
function buildV1(rows: Row[]): Buffer {
  const sorted = sortRows(rows);
  const keySize = 17;
  const names = [...new Set(sorted.map((r) => r.pack))];
  const namesStart = 8 + sorted.length * (keySize + 20);
  const nameOffsets = new Map<string, number>();
  let cursor = namesStart;
  for (const name of names) {
    nameOffsets.set(name, cursor);
    cursor += name.length;
  }
  const header = Buffer.alloc(8);
  header[0] = 1;
  header[1] = keySize;
  header.writeUInt16BE(20, 2);
  header.writeUInt32BE(sorted.length, 4);
  const entries = sorted.map((r) => {
    const value = Buffer.alloc(20);
    value.writeUIntBE(r.timestamp, 0, 6); // u48 timestamp
    value[6] = r.format ?? 1; // format version
    value[7] = r.pack.length; // pack name length
    value.writeUInt32BE(nameOffsets.get(r.pack)!, 8); // absolute offset of the pack name
    value.writeUInt32BE(((r.deleted ? 0x80000000 : 0) | r.offset) >>> 0, 12); // deleted bit ‖ offset
    value.writeUInt32BE(r.packed, 16);
    return Buffer.concat([key(r), value]);
  });
  return Buffer.concat([header, ...entries, Buffer.from(names.join(""), "latin1"), Buffer.alloc(32, 7)]);
}

/** v2: header(17) ‖ entries ‖ packs(5 each) ‖ formats(6 each) ‖ names ‖ 32 random bytes. */
function buildV2(rows: Row[], entrySize: 16 | 17 | 18 | 19, formats: { compression: number; version: number }[], baseTimestamp = 0): Buffer {
  const sorted = sortRows(rows);
  const keySize = 17;
  const names = [...new Set(sorted.map((r) => r.pack))];
  const packsStart = 17 + sorted.length * (keySize + entrySize);
  const formatsStart = packsStart + names.length * 5;
  const namesStart = formatsStart + formats.length * 6;
  const header = Buffer.alloc(17);
  header[0] = 2;
  header[1] = keySize;
  header.writeUInt16BE(entrySize, 2);
  header.writeUInt32BE(sorted.length, 4);
  header.writeUInt32BE(names.length, 8);
  header[12] = formats.length;
  header.writeUInt32BE(baseTimestamp, 13);
  const entries = sorted.map((r) => {
    const value = Buffer.alloc(entrySize);
    const packIndex = names.indexOf(r.pack);
    value.writeUInt32BE(r.timestamp - baseTimestamp, 0);
    value.writeUInt32BE(((r.deleted ? 0x80000000 : 0) | r.offset) >>> 0, 4);
    value.writeUIntBE((r.original ?? r.packed) & 0xffffff, 8, 3);
    value.writeUIntBE(r.packed & 0xffffff, 11, 3);
    value.writeUInt16BE(packIndex & 0xffff, 14);
    if (entrySize >= 17) value[16] = r.format ?? 0;
    if (entrySize >= 18) value[17] = (packIndex >> 16) & 0xff;
    if (entrySize >= 19) value[18] = (((r.original ?? r.packed) >> 24) << 4) | (r.packed >> 24);
    return Buffer.concat([key(r), value]);
  });
  const packs = names.map((name, i) => {
    const b = Buffer.alloc(5);
    b[0] = name.length;
    b.writeUInt32BE(namesStart + names.slice(0, i).reduce((n, s) => n + s.length, 0), 1);
    return b;
  });
  const formatBytes = formats.map((f) => {
    const b = Buffer.alloc(6);
    b.writeUInt32BE(f.compression, 0);
    b[4] = f.version;
    b[5] = 0;
    return b;
  });
  return Buffer.concat([header, ...entries, ...packs, ...formatBytes, Buffer.from(names.join(""), "latin1"), Buffer.alloc(32, 9)]);
}

const hash = (n: number) => n.toString(16).padStart(32, "0");
const rows: Row[] = [
  { prefix: "", hashHex: hash(1), timestamp: 1_700_000_000, pack: "p11111111111111111111111111111111-s1", offset: 32, packed: 100 },
  { prefix: "k", hashHex: hash(2), timestamp: 1_700_000_001, pack: "q22222222222222222222222222222222-s1", offset: 32, packed: 60 },
  { prefix: "m", hashHex: hash(3), timestamp: 1_700_000_002, pack: "q22222222222222222222222222222222-s1", offset: 92, packed: 500, format: 1 },
  {
    prefix: "m",
    hashHex: hash(4),
    timestamp: 1_700_000_003,
    deleted: true,
    pack: "q33333333333333333333333333333333-s2",
    offset: 4096,
    packed: 300,
    format: 1,
  },
  { prefix: "x", hashHex: hash(5), timestamp: 1_700_000_004, pack: "q22222222222222222222222222222222-s1", offset: 592, packed: 40 },
];

function expectedManifestEntries(compression: number, formatVersion: number): Partial<IndexEntry>[] {
  return rows
    .filter((r) => r.prefix === "m")
    .map((r) => ({
      contentId: "m" + r.hashHex,
      timestampSeconds: r.timestamp,
      deleted: r.deleted === true,
      packBlobId: r.pack,
      packOffset: r.offset,
      packedLength: r.packed,
      compressionHeaderId: compression,
      formatVersion,
      encryptionKeyId: 0,
    }));
}

describe("index parsing", () => {
  it("reads the manifest entries of a v1 index and skips the others", () => {
    assert.deepEqual(parseIndexEntries(buildV1(rows), "v1", "m"), expectedManifestEntries(0, 1));
  });

  for (const entrySize of [16, 17, 18, 19] as const) {
    it(`reads the manifest entries of a v2 index with ${entrySize}-byte entries`, () => {
      const formats =
        entrySize >= 17
          ? [
              { compression: 0, version: 2 },
              { compression: 0x1101, version: 2 },
            ]
          : [{ compression: 0, version: 2 }];
      const withFormat = rows.map((r) => (r.prefix === "m" && entrySize >= 17 ? { ...r, format: 1 } : { ...r, format: 0 }));
      const parsed = parseIndexEntries(buildV2(withFormat, entrySize, formats, 1_600_000_000), `v2/${entrySize}`, "m");
      assert.deepEqual(parsed, expectedManifestEntries(entrySize >= 17 ? 0x1101 : 0, 2));
    });
  }

  it("reads lengths above 16 MiB from the 19-byte entry's high nibbles", () => {
    const big: Row[] = [{ prefix: "m", hashHex: hash(9), timestamp: 5, pack: "qbig-s1", offset: 0, packed: 0x2345678, original: 0x3456789 }];
    const [entry] = parseIndexEntries(buildV2(big, 19, [{ compression: 0, version: 2 }]), "big", "m");
    assert.equal(entry!.packedLength, 0x2345678);
  });

  it("finds nothing in an index without manifest entries", () => {
    assert.deepEqual(parseIndexEntries(buildV1(rows.filter((r) => r.prefix !== "m")), "v1", "m"), []);
  });

  it("refuses an unknown index version and truncated indexes", () => {
    const v3 = buildV1(rows);
    v3[0] = 3;
    assert.throws(
      () => parseIndexEntries(v3, "v3", "m"),
      (e) => isRepositoryError(e, "unsupported"),
    );
    const v2 = buildV2(rows, 17, [{ compression: 0, version: 2 }]);
    assert.throws(
      () => parseIndexEntries(v2.subarray(0, 60), "short v2", "m"),
      (e) => isRepositoryError(e, "corrupt"),
    );
    assert.throws(
      () => parseIndexEntries(buildV1(rows).subarray(0, 50), "short v1", "m"),
      (e) => isRepositoryError(e, "corrupt"),
    );
  });
});

describe("merging index entries", () => {
  const base: IndexEntry = {
    contentId: "m01",
    timestampSeconds: 100,
    deleted: false,
    packBlobId: "qa",
    packOffset: 0,
    packedLength: 1,
    compressionHeaderId: 0,
    formatVersion: 2,
    encryptionKeyId: 0,
  };
  const table: { name: string; entries: Partial<IndexEntry>[]; winner: Partial<IndexEntry> | undefined }[] = [
    {
      name: "the newer entry wins",
      entries: [
        { timestampSeconds: 100, packBlobId: "qa" },
        { timestampSeconds: 101, packBlobId: "qb" },
      ],
      winner: { packBlobId: "qb" },
    },
    { name: "a newer deletion removes the content", entries: [{ timestampSeconds: 100 }, { timestampSeconds: 101, deleted: true }], winner: undefined },
    {
      name: "in the same second a live entry beats a deletion",
      entries: [
        { timestampSeconds: 100, deleted: true, packBlobId: "qz" },
        { timestampSeconds: 100, packBlobId: "qa" },
      ],
      winner: { packBlobId: "qa" },
    },
    { name: "then the greater pack name wins", entries: [{ packBlobId: "qb" }, { packBlobId: "qc" }, { packBlobId: "qa" }], winner: { packBlobId: "qc" } },
    {
      name: "an older live entry does not resurrect a deleted content",
      entries: [{ timestampSeconds: 200, deleted: true }, { timestampSeconds: 150 }],
      winner: undefined,
    },
  ];
  for (const row of table) {
    it(row.name, () => {
      const merged = mergeLiveEntries(row.entries.map((e) => [{ ...base, ...e }]));
      const winner = merged.get("m01");
      if (row.winner === undefined) assert.equal(winner, undefined);
      else assert.equal(winner?.packBlobId, row.winner.packBlobId);
    });
  }
});
