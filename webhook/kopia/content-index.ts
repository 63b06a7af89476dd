// Kopia index blobs: sorted tables mapping content IDs to where each content lives in a pack.
// Two binary layouts exist (version byte 1 and 2); every field is big-endian. This module parses
// both and merges many of them with kopia's precedence rules.

import { RepositoryError } from "./repository-error.ts";

export type IndexEntry = {
  contentId: string;
  timestampSeconds: number;
  deleted: boolean;
  packBlobId: string;
  packOffset: number;
  packedLength: number;
  compressionHeaderId: number;
  formatVersion: number;
  encryptionKeyId: number;
};

/** Fixed sizes of kopia's index layouts (repo/content/index: index_v1.go, index_v2.go). */
const INDEX_V1 = { headerBytes: 8, valueBytes: 20 } as const;
const INDEX_V2 = { headerBytes: 17, packBytes: 5, formatBytes: 6 } as const;
/** The top bit of an entry's pack offset marks a deleted content. */
const DELETED_BIT = 0x80000000;

function contentIdFromKey(bytes: Buffer, offset: number, keySize: number): string {
  const prefix = bytes[offset]!;
  const hash = bytes.toString("hex", offset + 1, offset + keySize);
  return prefix === 0 ? hash : String.fromCharCode(prefix) + hash;
}

/** The half-open range of entries whose key starts with `prefixByte` (keys are sorted bytewise). */
function prefixRange(bytes: Buffer, entriesOffset: number, stride: number, count: number, prefixByte: number): [number, number] {
  const firstAtLeast = (value: number) => {
    let lo = 0;
    let hi = count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (bytes[entriesOffset + mid * stride]! < value) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  return [firstAtLeast(prefixByte), firstAtLeast(prefixByte + 1)];
}

function readPackName(bytes: Buffer, offset: number, length: number, what: string): string {
  if (offset + length > bytes.length || length === 0) throw new RepositoryError("corrupt", `${what}: pack name out of bounds`);
  return bytes.toString("latin1", offset, offset + length);
}

function parseV1(bytes: Buffer, what: string, prefixByte: number): IndexEntry[] {
  const keySize = bytes[1]!;
  const entrySize = bytes.readUInt16BE(2);
  const count = bytes.readUInt32BE(4);
  if (keySize === 255 || count === 0) return [];
  if (entrySize !== INDEX_V1.valueBytes || keySize < 2)
    throw new RepositoryError("corrupt", `${what}: unexpected index v1 key/entry size ${keySize}/${entrySize}`);
  const stride = keySize + entrySize;
  if (INDEX_V1.headerBytes + count * stride > bytes.length) throw new RepositoryError("corrupt", `${what}: index v1 is truncated`);
  const [from, to] = prefixRange(bytes, INDEX_V1.headerBytes, stride, count, prefixByte);
  const out: IndexEntry[] = [];
  const packNames = new Map<number, string>();
  for (let i = from; i < to; i++) {
    const at = INDEX_V1.headerBytes + i * stride;
    const value = at + keySize;
    const formatVersion = bytes[value + 6]!;
    const nameLength = bytes[value + 7]!;
    const nameOffset = bytes.readUInt32BE(value + 8);
    const offsetAndFlag = bytes.readUInt32BE(value + 12);
    let packBlobId = packNames.get(nameOffset);
    if (packBlobId === undefined) {
      packBlobId = readPackName(bytes, nameOffset, nameLength, what);
      packNames.set(nameOffset, packBlobId);
    }
    out.push({
      contentId: contentIdFromKey(bytes, at, keySize),
      timestampSeconds: bytes.readUIntBE(value, 6),
      deleted: (offsetAndFlag & DELETED_BIT) !== 0,
      packBlobId,
      packOffset: offsetAndFlag & ~DELETED_BIT & 0x7fffffff,
      packedLength: bytes.readUInt32BE(value + 16),
      compressionHeaderId: 0,
      formatVersion,
      encryptionKeyId: 0,
    });
  }
  return out;
}

function parseV2(bytes: Buffer, what: string, prefixByte: number): IndexEntry[] {
  if (bytes.length < INDEX_V2.headerBytes) throw new RepositoryError("corrupt", `${what}: index v2 header is truncated`);
  const keySize = bytes[1]!;
  const entrySize = bytes.readUInt16BE(2);
  const count = bytes.readUInt32BE(4);
  const packCount = bytes.readUInt32BE(8);
  const formatCount = bytes[12]!;
  const baseTimestamp = bytes.readUInt32BE(13);
  if (keySize <= 1 || entrySize < 16 || entrySize > 19)
    throw new RepositoryError("corrupt", `${what}: unexpected index v2 key/entry size ${keySize}/${entrySize}`);
  const stride = keySize + entrySize;
  const packsOffset = INDEX_V2.headerBytes + count * stride;
  const formatsOffset = packsOffset + packCount * INDEX_V2.packBytes;
  if (formatsOffset + formatCount * INDEX_V2.formatBytes > bytes.length) throw new RepositoryError("corrupt", `${what}: index v2 is truncated`);
  const [from, to] = prefixRange(bytes, INDEX_V2.headerBytes, stride, count, prefixByte);
  const out: IndexEntry[] = [];
  const packNames = new Map<number, string>();
  for (let i = from; i < to; i++) {
    const at = INDEX_V2.headerBytes + i * stride;
    const value = at + keySize;
    const offsetAndFlag = bytes.readUInt32BE(value + 4);
    let packedLength = bytes.readUIntBE(value + 11, 3);
    let packIndex = bytes.readUInt16BE(value + 14);
    const formatIndex = entrySize >= 17 ? bytes[value + 16]! : 0;
    if (entrySize >= 18) packIndex |= bytes[value + 17]! << 16;
    if (entrySize >= 19) packedLength |= (bytes[value + 18]! & 0x0f) << 24;
    if (packIndex >= packCount) throw new RepositoryError("corrupt", `${what}: pack index ${packIndex} out of range`);
    let packBlobId = packNames.get(packIndex);
    if (packBlobId === undefined) {
      const packAt = packsOffset + packIndex * INDEX_V2.packBytes;
      packBlobId = readPackName(bytes, bytes.readUInt32BE(packAt + 1), bytes[packAt]!, what);
      packNames.set(packIndex, packBlobId);
    }
    if (formatIndex >= formatCount) throw new RepositoryError("corrupt", `${what}: format index ${formatIndex} out of range`);
    const formatAt = formatsOffset + formatIndex * INDEX_V2.formatBytes;
    out.push({
      contentId: contentIdFromKey(bytes, at, keySize),
      timestampSeconds: baseTimestamp + bytes.readUInt32BE(value),
      deleted: (offsetAndFlag & DELETED_BIT) !== 0,
      packBlobId,
      packOffset: offsetAndFlag & 0x7fffffff,
      packedLength,
      compressionHeaderId: bytes.readUInt32BE(formatAt),
      formatVersion: bytes[formatAt + 4]!,
      encryptionKeyId: bytes[formatAt + 5]!,
    });
  }
  return out;
}

/**
 * The entries of one decrypted index blob whose content ID starts with `prefix` (one letter,
 * `m` for manifests). Entries for file data are skipped without being decoded.
 */
export function parseIndexEntries(bytes: Buffer, what: string, prefix: string): IndexEntry[] {
  if (bytes.length < INDEX_V1.headerBytes) throw new RepositoryError("corrupt", `${what}: index is truncated`);
  const prefixByte = prefix.charCodeAt(0);
  switch (bytes[0]) {
    case 1:
      return parseV1(bytes, what, prefixByte);
    case 2:
      return parseV2(bytes, what, prefixByte);
    default:
      throw new RepositoryError("unsupported", `${what}: index version ${bytes[0]} is not supported (supported: 1, 2)`);
  }
}

/** kopia's precedence between two index entries for the same content. */
function supersedes(candidate: IndexEntry, current: IndexEntry): boolean {
  if (candidate.timestampSeconds !== current.timestampSeconds) return candidate.timestampSeconds > current.timestampSeconds;
  if (candidate.deleted !== current.deleted) return !candidate.deleted;
  return candidate.packBlobId > current.packBlobId;
}

/**
 * Merges the entries of many index blobs: per content the newest entry wins, a live entry beats a
 * deleted one of the same second, then the greater pack name. Deleted winners are dropped: they
 * are what manifest compaction and `snapshot delete` leave behind.
 */
export function mergeLiveEntries(entryLists: Iterable<readonly IndexEntry[]>): Map<string, IndexEntry> {
  const winners = new Map<string, IndexEntry>();
  for (const list of entryLists) {
    for (const entry of list) {
      const current = winners.get(entry.contentId);
      if (current === undefined || supersedes(entry, current)) winners.set(entry.contentId, entry);
    }
  }
  for (const [id, entry] of winners) if (entry.deleted) winners.delete(id);
  return winners;
}
