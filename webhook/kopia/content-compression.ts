// Content-level compression: a compressed content's plaintext is BE32 header ID ‖ stream. The
// header IDs are kopia's registry; only the ones Node decodes natively are accepted.

import { gunzipSync, inflateRawSync, zstdDecompressSync } from "node:zlib";
import { RepositoryError } from "./repository-error.ts";

type Decoder = (stream: Buffer) => Buffer;

const decoders = new Map<number, Decoder>([
  [0x1000, gunzipSync], // gzip
  [0x1001, gunzipSync], // gzip-best-speed
  [0x1002, gunzipSync], // gzip-best-compression
  [0x1100, zstdDecompressSync], // zstd
  [0x1101, zstdDecompressSync], // zstd-fastest
  [0x1102, zstdDecompressSync], // zstd-better-compression
  [0x1103, zstdDecompressSync], // zstd-best-compression
  [0x1300, gunzipSync], // pgzip
  [0x1301, gunzipSync], // pgzip-best-speed
  [0x1302, gunzipSync], // pgzip-best-compression
  [0x1500, inflateRawSync], // deflate-default
  [0x1501, inflateRawSync], // deflate-best-speed
  [0x1502, inflateRawSync], // deflate-best-compression
]);

export function decompressContent(headerId: number, plaintext: Buffer, what: string): Buffer {
  if (headerId === 0) return plaintext;
  const decode = decoders.get(headerId);
  if (decode === undefined) {
    throw new RepositoryError("unsupported", `${what} uses compression 0x${headerId.toString(16)}, which this reader does not support`);
  }
  if (plaintext.length < 4 || plaintext.readUInt32BE(0) !== headerId) {
    throw new RepositoryError("corrupt", `${what}: compression header does not match the index (expected 0x${headerId.toString(16)})`);
  }
  try {
    return decode(plaintext.subarray(4));
  } catch (error) {
    throw new RepositoryError("corrupt", `${what}: compressed stream does not decode`, { cause: error });
  }
}
