// A Kopia filesystem repository as a BlobStore: one `.f` file per blob, spread over shard
// directories that `.shards` describes. Kopia writes each blob to a temporary name and renames
// it, so only names ending in `.f` are whole blobs. This store only ever opens files for reading.

import { open, readFile, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import type { BlobMetadata, BlobStore } from "./blob-store.ts";
import { RepositoryError, fromFileSystemError } from "./repository-error.ts";

const blobFileSuffix = ".f";
const shardsFileName = ".shards";

export type ShardingParameters = {
  defaultShards: number[];
  maxNonShardedLength: number;
  overrides: { prefix: string; shards: number[] }[];
};

/** The layouts kopia may have chosen when `.shards` is absent, most likely first. */
const layoutsWithoutShardsFile: ShardingParameters[] = [
  { defaultShards: [3, 3], maxNonShardedLength: 20, overrides: [] },
  { defaultShards: [1, 3], maxNonShardedLength: 20, overrides: [] },
  { defaultShards: [], maxNonShardedLength: 20, overrides: [] },
];

export function parseShardingParameters(text: string): ShardingParameters {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new RepositoryError("corrupt", "the .shards file is not JSON", { cause: error });
  }
  const isShardList = (v: unknown): v is number[] => Array.isArray(v) && v.every((n) => Number.isInteger(n) && n > 0);
  if (typeof raw !== "object" || raw === null) throw new RepositoryError("corrupt", "the .shards file is not an object");
  const record = raw as Record<string, unknown>;
  const known = new Set(["default", "maxNonShardedLength", "overrides"]);
  const unknownKeys = Object.keys(record).filter((key) => !known.has(key));
  if (unknownKeys.length > 0) throw new RepositoryError("unsupported", `the .shards file has unknown fields: ${unknownKeys.join(", ")}`);
  const defaultShards = record.default ?? [];
  if (!isShardList(defaultShards)) throw new RepositoryError("corrupt", "the .shards default is not a list of positive integers");
  const maxNonShardedLength = record.maxNonShardedLength ?? 0;
  if (!Number.isInteger(maxNonShardedLength) || (maxNonShardedLength as number) < 0) {
    throw new RepositoryError("corrupt", "the .shards maxNonShardedLength is not a non-negative integer");
  }
  const overridesRaw = record.overrides ?? [];
  if (!Array.isArray(overridesRaw)) throw new RepositoryError("corrupt", "the .shards overrides is not a list");
  const overrides = overridesRaw.map((o: unknown) => {
    const item = o as { prefix?: unknown; shards?: unknown } | null;
    if (typeof item?.prefix !== "string" || !isShardList(item.shards ?? [])) {
      throw new RepositoryError("corrupt", "a .shards override is malformed");
    }
    return { prefix: item.prefix, shards: (item.shards ?? []) as number[] };
  });
  return { defaultShards, maxNonShardedLength: maxNonShardedLength as number, overrides };
}

/** The path of a blob relative to the repository root, as kopia's sharded storage computes it. */
export function shardedRelativePath(id: string, parameters: ShardingParameters): string {
  if (id.length <= parameters.maxNonShardedLength) return id + blobFileSuffix;
  const shards = parameters.overrides.find((o) => id.startsWith(o.prefix))?.shards ?? parameters.defaultShards;
  const parts: string[] = [];
  let rest = id;
  for (const size of shards) {
    if (rest.length <= size) break;
    parts.push(rest.slice(0, size));
    rest = rest.slice(size);
  }
  parts.push(rest + blobFileSuffix);
  return parts.join("/");
}

export function createFilesystemBlobStore(deps: { rootPath: string }): BlobStore {
  const { rootPath } = deps;
  /** Where listing found each blob: reads use it, so any layout that lists also reads. */
  const listedPaths = new Map<string, string>();
  let sharding: ShardingParameters | null | undefined;

  async function loadSharding(): Promise<ShardingParameters | null> {
    if (sharding !== undefined) return sharding;
    try {
      sharding = parseShardingParameters(await readFile(join(rootPath, shardsFileName), "utf8"));
    } catch (error) {
      if (error instanceof RepositoryError) throw error;
      const failure = fromFileSystemError(error, `${join(rootPath, shardsFileName)}`);
      if (failure.kind !== "not-found") throw failure;
      // No .shards: a repository from before kopia persisted its layout. Probe the layouts it used.
      sharding = null;
    }
    return sharding;
  }

  async function candidatePaths(id: string): Promise<string[]> {
    const listed = listedPaths.get(id);
    if (listed !== undefined) return [listed];
    const parameters = await loadSharding();
    const layouts = parameters === null ? layoutsWithoutShardsFile : [parameters];
    return [...new Set(layouts.map((layout) => join(rootPath, shardedRelativePath(id, layout))))];
  }

  /** Opens the blob's file, trying each candidate layout; `not-found` only when none exists. */
  async function openBlob(id: string) {
    let lastError: unknown;
    for (const path of await candidatePaths(id)) {
      try {
        return { handle: await open(path, "r"), path };
      } catch (error) {
        lastError = error;
        const code = (error as NodeJS.ErrnoException).code;
        if (code !== "ENOENT" && code !== "ENOTDIR") throw fromFileSystemError(error, `blob ${id} (${path})`);
      }
    }
    listedPaths.delete(id);
    throw fromFileSystemError(lastError, `blob ${id} in ${rootPath}`);
  }

  async function walk(directory: string, accumulated: string, prefix: string, out: BlobMetadata[]): Promise<void> {
    let entries;
    try {
      entries = await readdir(directory, { withFileTypes: true });
    } catch (error) {
      throw fromFileSystemError(error, `directory ${directory}`);
    }
    for (const entry of entries) {
      const name = entry.name;
      const fullPath = join(directory, name);
      let isDirectory = entry.isDirectory();
      let isFile = entry.isFile();
      if (!isDirectory && !isFile) {
        // Some network file systems do not report the entry type in the listing.
        try {
          const info = await stat(fullPath);
          isDirectory = info.isDirectory();
          isFile = info.isFile();
        } catch (error) {
          throw fromFileSystemError(error, fullPath);
        }
      }
      if (isDirectory) {
        if (name.startsWith(".")) continue;
        const next = accumulated + name;
        if (next.startsWith(prefix) || prefix.startsWith(next)) await walk(fullPath, next, prefix, out);
        continue;
      }
      if (!isFile || !name.endsWith(blobFileSuffix)) continue;
      const id = accumulated + name.slice(0, -blobFileSuffix.length);
      if (!id.startsWith(prefix) || id === "") continue;
      // No stat per file: the reader needs names only, and a refresh lists every index blob.
      listedPaths.set(id, fullPath);
      out.push({ id });
    }
  }

  return {
    location: rootPath,

    async list(prefix) {
      try {
        const info = await stat(rootPath);
        if (!info.isDirectory()) throw new RepositoryError("not-found", `${rootPath} is not a directory`);
      } catch (error) {
        if (error instanceof RepositoryError) throw error;
        throw fromFileSystemError(error, `repository folder ${rootPath}`);
      }
      const out: BlobMetadata[] = [];
      await walk(rootPath, "", prefix, out);
      out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      return out;
    },

    async read(id) {
      const { handle, path } = await openBlob(id);
      try {
        return await handle.readFile();
      } catch (error) {
        throw fromFileSystemError(error, `blob ${id} (${path})`);
      } finally {
        await handle.close();
      }
    },

    async readRange(id, offset, length) {
      const { handle, path } = await openBlob(id);
      try {
        const buffer = Buffer.alloc(length);
        let filled = 0;
        while (filled < length) {
          const { bytesRead } = await handle.read(buffer, filled, length - filled, offset + filled);
          if (bytesRead === 0) break;
          filled += bytesRead;
        }
        if (filled !== length) {
          throw new RepositoryError("corrupt", `blob ${id} is truncated: wanted ${length} bytes at offset ${offset}, got ${filled}`);
        }
        return buffer;
      } catch (error) {
        if (error instanceof RepositoryError) throw error;
        throw fromFileSystemError(error, `blob ${id} (${path})`);
      } finally {
        await handle.close();
      }
    },
  };
}
