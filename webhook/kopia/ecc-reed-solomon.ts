// Kopia's REED-SOLOMON-CRC32 error correction, for reading. When a repository has ECC, every
// encrypted blob and content is stored as: the parity shards of every block (each preceded by
// its CRC32, big-endian), then the data shards (each preceded by its CRC32), where the data is a
// 4-byte big-endian length, the ciphertext, and zero padding to whole shards (the trailing padding
// of large blobs is not stored). Shard counts and sizes follow from the overhead percentage and
// the stored length alone. A data shard whose CRC fails is rebuilt from the other shards with the
// systematic Vandermonde Reed-Solomon code over GF(2^8) (polynomial 0x11d) that kopia's Go
// library uses by default; when fewer intact shards remain than there are data shards, the blob
// is `corrupt`. No npm Reed-Solomon package matches that code and its matrix, hence this file.

import { crc32 } from "node:zlib";
import { RepositoryError } from "./repository-error.ts";

export const eccAlgorithm = "REED-SOLOMON-CRC32";

const lengthBytes = 4;
const crcBytes = 4;
const smallDataShards = 6;
const smallParityShards = 2;

// ---- GF(2^8), generator 2, polynomial x^8+x^4+x^3+x^2+1 -------------------------------------

const expTable = new Uint8Array(510);
const logTable = new Uint8Array(256);
{
  let x = 1;
  for (let i = 0; i < 255; i++) {
    expTable[i] = x;
    expTable[i + 255] = x;
    logTable[x] = i;
    x <<= 1;
    if (x & 0x100) x ^= 0x11d;
  }
}

function gfMul(a: number, b: number): number {
  return a === 0 || b === 0 ? 0 : expTable[logTable[a]! + logTable[b]!]!;
}

function gfDiv(a: number, b: number): number {
  if (a === 0) return 0;
  return expTable[(logTable[a]! - logTable[b]! + 255) % 255]!;
}

function gfPow(a: number, n: number): number {
  if (n === 0) return 1;
  if (a === 0) return 0;
  return expTable[(logTable[a]! * n) % 255]!;
}

type Matrix = Uint8Array[];

function multiply(a: Matrix, b: Matrix): Matrix {
  return a.map((row) => {
    const out = new Uint8Array(b[0]!.length);
    for (let c = 0; c < out.length; c++) {
      let value = 0;
      for (let k = 0; k < row.length; k++) value ^= gfMul(row[k]!, b[k]![c]!);
      out[c] = value;
    }
    return out;
  });
}

/** Gauss-Jordan inversion over GF(2^8); undefined when singular. */
function invert(matrix: Matrix): Matrix | undefined {
  const n = matrix.length;
  const work = matrix.map((row, r) => {
    const extended = new Uint8Array(2 * n);
    extended.set(row);
    extended[n + r] = 1;
    return extended;
  });
  for (let col = 0; col < n; col++) {
    let pivot = col;
    while (pivot < n && work[pivot]![col] === 0) pivot++;
    if (pivot === n) return undefined;
    [work[col], work[pivot]] = [work[pivot]!, work[col]!];
    const row = work[col]!;
    const scale = row[col]!;
    if (scale !== 1) for (let c = 0; c < 2 * n; c++) row[c] = gfDiv(row[c]!, scale);
    for (let r = 0; r < n; r++) {
      if (r === col || work[r]![col] === 0) continue;
      const factor = work[r]![col]!;
      for (let c = 0; c < 2 * n; c++) work[r]![c]! ^= gfMul(factor, row[c]!);
    }
  }
  return work.map((row) => row.slice(n));
}

const encodingMatrices = new Map<string, Matrix>();

/** The systematic encoding matrix: a Vandermonde matrix times the inverse of its top square. */
function encodingMatrix(dataShards: number, totalShards: number): Matrix {
  const key = `${dataShards}/${totalShards}`;
  const known = encodingMatrices.get(key);
  if (known !== undefined) return known;
  const vandermonde: Matrix = Array.from({ length: totalShards }, (_, r) => Uint8Array.from({ length: dataShards }, (_, c) => gfPow(r, c)));
  const topInverse = invert(vandermonde.slice(0, dataShards));
  if (topInverse === undefined) throw new Error(`no Reed-Solomon matrix for ${dataShards}+${totalShards - dataShards} shards`);
  const result = multiply(vandermonde, topInverse);
  encodingMatrices.set(key, result);
  return result;
}

/** Rebuilds the missing data shards in place from any `dataShards` intact shards. */
function reconstructData(shards: (Uint8Array | undefined)[], dataShards: number, shardSize: number): boolean {
  if (shards.slice(0, dataShards).every((s) => s !== undefined)) return true;
  const intact: number[] = [];
  for (let i = 0; i < shards.length && intact.length < dataShards; i++) if (shards[i] !== undefined) intact.push(i);
  if (intact.length < dataShards) return false;
  const matrix = encodingMatrix(dataShards, shards.length);
  const decode = invert(intact.map((i) => matrix[i]!));
  if (decode === undefined) return false;
  for (let missing = 0; missing < dataShards; missing++) {
    if (shards[missing] !== undefined) continue;
    const out = new Uint8Array(shardSize);
    const coefficients = decode[missing]!;
    for (let k = 0; k < dataShards; k++) {
      const c = coefficients[k]!;
      if (c === 0) continue;
      const input = shards[intact[k]!]!;
      for (let b = 0; b < shardSize; b++) out[b]! ^= gfMul(c, input[b]!);
    }
    shards[missing] = out;
  }
  return true;
}

// ---- kopia's shard geometry --------------------------------------------------------------------

const f32 = Math.fround;

/** Data and parity shards for a space overhead in percent, computed in float32 as kopia computes them. */
export function computeShards(spaceOverhead: number): { data: number; parity: number } {
  const between = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
  // Go computes these in float32 and then floors float64(val) * float64(percent).
  let data = 128;
  let parity = between(Math.floor(128 * f32(f32(spaceOverhead) / 100)), 1, 128);
  if (parity === 1) {
    parity = 2;
    data = between(Math.floor(2 * f32(100 / f32(spaceOverhead))), 128, 254);
  }
  return { data, parity };
}

type Geometry = {
  maxShardSize: number;
  dataShards: number;
  parityShards: number;
  thresholdParityOutput: number;
  thresholdBlocksOutput: number;
};

function geometryFor(overheadPercent: number): Geometry {
  const maxShardSize = overheadPercent === 1 ? 1024 : overheadPercent === 2 ? 512 : overheadPercent === 3 ? 256 : overheadPercent <= 6 ? 128 : 64;
  const freeSpaceOverhead = Math.max(f32(f32(overheadPercent) - f32((100 * crcBytes) / maxShardSize)), f32(0.01));
  const { data, parity } = computeShards(freeSpaceOverhead);
  const finalSize = (d: number, p: number, shardSize: number) => (d + p) * (crcBytes + shardSize);
  const thresholdParityInput = 2 * crcBytes * (data + parity);
  return {
    maxShardSize,
    dataShards: data,
    parityShards: parity,
    thresholdParityOutput: finalSize(smallDataShards, smallParityShards, Math.ceil(thresholdParityInput / smallDataShards)),
    thresholdBlocksOutput: finalSize(data, parity, maxShardSize),
  };
}

export type EccDecoder = {
  /** The stored bytes without the error correction: verified, and repaired where it can be. */
  decode(stored: Buffer, what: string): Buffer;
};

export function createEccDecoder(overheadPercent: number): EccDecoder {
  if (!Number.isInteger(overheadPercent) || overheadPercent < 1 || overheadPercent > 100) {
    throw new RepositoryError("unsupported", `ECC overhead ${overheadPercent}% is not between 1 and 100`);
  }
  const geometry = geometryFor(overheadPercent);

  return {
    decode(stored, what) {
      const length = stored.length;
      let dataShards: number;
      let parityShards: number;
      let shardSize: number;
      let blocks: number;
      if (length <= geometry.thresholdParityOutput) {
        [dataShards, parityShards, blocks] = [smallDataShards, smallParityShards, 1];
        shardSize = Math.max(Math.ceil(length / (dataShards + parityShards)), 1 + crcBytes) - crcBytes;
      } else if (length <= geometry.thresholdBlocksOutput) {
        [dataShards, parityShards, blocks] = [geometry.dataShards, geometry.parityShards, 1];
        shardSize = Math.max(Math.ceil(length / (dataShards + parityShards)), 1 + crcBytes) - crcBytes;
      } else {
        [dataShards, parityShards, shardSize] = [geometry.dataShards, geometry.parityShards, geometry.maxShardSize];
        blocks = Math.ceil(length / ((dataShards + parityShards) * (crcBytes + shardSize)));
      }
      const stride = crcBytes + shardSize;
      const parityRegion = parityShards * stride * blocks;
      const full = Buffer.alloc((dataShards + parityShards) * stride * blocks);
      stored.copy(full);
      const dataRegion = full.subarray(parityRegion);
      const storedDataEnd = length - parityRegion;
      if (storedDataEnd < 0) throw new RepositoryError("corrupt", `${what} is shorter than its error-correction parity`);

      const output: Buffer[] = [];
      let originalSize = 0;
      let written = 0;
      for (let block = 0; block < blocks; block++) {
        const shards: (Uint8Array | undefined)[] = [];
        for (let i = 0; i < dataShards; i++) {
          const start = (block * dataShards + i) * stride;
          const shard = dataRegion.subarray(start + crcBytes, start + stride);
          // Shards that lie wholly in the unstored padding are zeros and carry no CRC to check.
          const intact = start >= storedDataEnd || dataRegion.readUInt32BE(start) === crc32(shard);
          shards.push(intact ? shard : undefined);
        }
        for (let i = 0; i < parityShards; i++) {
          const start = (block * parityShards + i) * stride;
          const shard = full.subarray(start + crcBytes, start + stride);
          shards.push(full.readUInt32BE(start) === crc32(shard) ? shard : undefined);
        }
        if (!reconstructData(shards, dataShards, shardSize)) {
          throw new RepositoryError("corrupt", `${what} fails its CRC32 checks in more shards than its error correction can repair (block ${block})`);
        }
        const data = Buffer.concat(shards.slice(0, dataShards) as Uint8Array[]);
        let offset = 0;
        if (block === 0) {
          originalSize = data.readUInt32BE(0);
          offset = lengthBytes;
          if (originalSize > dataShards * shardSize * blocks) throw new RepositoryError("corrupt", `${what} claims ${originalSize} bytes, more than it holds`);
        }
        const take = Math.min(originalSize - written, data.length - offset);
        if (take > 0) {
          output.push(data.subarray(offset, offset + take));
          written += take;
        }
      }
      if (written !== originalSize) throw new RepositoryError("corrupt", `${what} holds ${written} of its ${originalSize} bytes`);
      return Buffer.concat(output);
    },
  };
}
