// Reads the snapshot manifests of a Kopia repository: format blob → master key → live index
// blobs → manifest contents in `q` packs → latest-wins merge. Index blobs and manifest contents
// are immutable by ID, so each is read once and kept; a later read touches only IDs it has not
// seen. A read either completes or throws: there is no partial answer.

import { setTimeout as sleep } from "node:timers/promises";
import type { BlobMetadata, BlobStore } from "./blob-store.ts";
import { type ContentCipher, blobIv, contentIv, createContentCipher } from "./content-cipher.ts";
import { decompressContent } from "./content-compression.ts";
import { createEccDecoder } from "./ecc-reed-solomon.ts";
import { type IndexEntry, mergeLiveEntries, parseIndexEntries } from "./content-index.ts";
import {
  type RepositoryConfig,
  decryptConfigJson,
  deriveFormatKey,
  formatBlobId,
  formatKeyCacheKey,
  parseFormatEnvelope,
  parseRepositoryConfig,
} from "./format-blob.ts";
import { type CompactionLog, type IndexBlobSet, parseCompactionLog, selectCompactionLogIndexBlobs, selectEpochIndexBlobs } from "./index-blob-set.ts";
import { type ManifestEntry, mergeManifestEntries, parseManifestContent } from "./manifest-entries.ts";
import { kopiaPasswordOf } from "./password-file.ts";
import { RepositoryError, isRepositoryError } from "./repository-error.ts";
import { type SnapshotManifest, toSnapshotManifest } from "./snapshot-manifest.ts";
import { type PolicyManifest, toPolicyManifest } from "./snapshot-retention.ts";
import { forEachConcurrently } from "../domain/bounded-concurrency.ts";

const manifestContentPrefix = "m";
const snapshotManifestType = "snapshot";
const policyManifestType = "policy";

export type RepositoryReadResult = {
  snapshots: readonly SnapshotManifest[];
  /** Policy manifests, for the retention reasons kopia's listing shows. */
  policies: readonly PolicyManifest[];
  /** Blobs (index blobs, compaction logs, pack ranges, format blob) read by this call. */
  blobsRead: number;
  indexBlobCount: number;
  manifestContentCount: number;
  /** Time spent deriving the format key from the password (0 when it came from the cache). */
  keyDerivationMs: number;
  attempts: number;
};

export type RepositoryReader = {
  read(): Promise<RepositoryReadResult>;
};

export type RepositoryReaderDeps = {
  store: BlobStore;
  /**
   * Called on every read, so a rotated password takes effect without a restart. The text as the
   * Secret holds it: surrounding whitespace is trimmed as kopia trims KOPIA_PASSWORD.
   */
  readPassword: () => Promise<string>;
};

/**
 * A blob that vanishes between listing and reading was removed by kopia's maintenance; the whole
 * read starts again with a fresh listing, which no longer holds it. Three more attempts, 100 ms
 * apart, outlast a maintenance run deleting while we read; after that the refresh fails and the
 * catalog retries it on its own schedule.
 */
const MISSING_BLOB_RETRIES = 3;
const MISSING_BLOB_RETRY_DELAY_MS = 100;

type OpenRepository = { formatBlob: Buffer; passwordKey: string; config: RepositoryConfig; cipher: ContentCipher };

export function createRepositoryReader(deps: RepositoryReaderDeps): RepositoryReader {
  const { store } = deps;

  const formatKeys = new Map<string, Buffer>();
  let open: OpenRepository | undefined;
  const indexEntriesByBlob = new Map<string, readonly IndexEntry[]>();
  const compactionLogsByBlob = new Map<string, CompactionLog>();
  const manifestsByContent = new Map<string, readonly ManifestEntry[]>();
  /** Parsed snapshot manifests by manifest entry, so a re-merge does not parse them again. */
  const snapshotsByEntry = new WeakMap<ManifestEntry, SnapshotManifest>();
  /** The last merge, reused while neither the index set nor the manifest contents change. */
  let lastMerge: { key: string; snapshots: SnapshotManifest[]; policies: PolicyManifest[] } | undefined;

  async function openRepository(counter: { blobsRead: number; keyDerivationMs: number }): Promise<OpenRepository> {
    const formatBlob = await store.read(formatBlobId);
    counter.blobsRead++;
    const envelope = parseFormatEnvelope(formatBlob);
    const password = kopiaPasswordOf(await deps.readPassword());
    const passwordKey = formatKeyCacheKey(password, envelope);
    const sameFormatBlob = open !== undefined && open.formatBlob.equals(formatBlob);
    if (sameFormatBlob && open!.passwordKey === passwordKey) return open!;

    let formatKey = formatKeys.get(passwordKey);
    if (formatKey === undefined) {
      const started = performance.now();
      formatKey = await deriveFormatKey(password, envelope);
      counter.keyDerivationMs += performance.now() - started;
    }
    const configJson = decryptConfigJson(envelope, formatKey);
    // Only keys that opened the format blob are kept: one repository, a rotation or two.
    if (formatKeys.size >= 4) formatKeys.clear();
    formatKeys.set(passwordKey, formatKey);
    const config = parseRepositoryConfig(configJson);
    if (!sameFormatBlob && open !== undefined) {
      indexEntriesByBlob.clear();
      compactionLogsByBlob.clear();
      manifestsByContent.clear();
      lastMerge = undefined;
    }
    open = { formatBlob, passwordKey, config, cipher: withErrorCorrection(config, createContentCipher(config.encryption, config.masterKey)) };
    return open;
  }

  async function readWholeBlob(repository: OpenRepository, blob: BlobMetadata, counter: { blobsRead: number }): Promise<Buffer> {
    const bytes = await store.read(blob.id);
    counter.blobsRead++;
    return repository.cipher.decrypt(blobIv(blob.id), bytes, `blob ${blob.id}`);
  }

  async function selectIndexBlobs(repository: OpenRepository, counter: { blobsRead: number }): Promise<IndexBlobSet> {
    if (repository.config.epochParameters.enabled) return selectEpochIndexBlobs(await store.list("x"));
    return selectCompactionLogIndexBlobs(store, async (blob) => {
      const known = compactionLogsByBlob.get(blob.id);
      if (known !== undefined) return known;
      const log = parseCompactionLog(await readWholeBlob(repository, blob, counter), `compaction log ${blob.id}`);
      compactionLogsByBlob.set(blob.id, log);
      return log;
    });
  }

  async function loadIndexEntries(repository: OpenRepository, blobs: readonly BlobMetadata[], counter: { blobsRead: number }) {
    const missing = blobs.filter((blob) => !indexEntriesByBlob.has(blob.id));
    await forEachConcurrently(missing, 16, async (blob) => {
      const what = `index blob ${blob.id}`;
      const entries = parseIndexEntries(await readWholeBlob(repository, blob, counter), what, manifestContentPrefix);
      indexEntriesByBlob.set(blob.id, entries);
    });
    const live = new Set(blobs.map((b) => b.id));
    for (const id of indexEntriesByBlob.keys()) if (!live.has(id)) indexEntriesByBlob.delete(id);
    return blobs.map((blob) => indexEntriesByBlob.get(blob.id)!);
  }

  async function loadManifestContents(repository: OpenRepository, live: Map<string, IndexEntry>, counter: { blobsRead: number }) {
    const missing = [...live.values()].filter((entry) => !manifestsByContent.has(entry.contentId));
    await forEachConcurrently(missing, 16, async (entry) => {
      const what = `manifest content ${entry.contentId} in ${entry.packBlobId}`;
      if (entry.encryptionKeyId !== 0) throw new RepositoryError("unsupported", `${what} uses encryption key ${entry.encryptionKeyId}`);
      if (entry.formatVersion < 1 || entry.formatVersion > 3) {
        throw new RepositoryError("unsupported", `${what} has content format version ${entry.formatVersion}`);
      }
      const frame = await store.readRange(entry.packBlobId, entry.packOffset, entry.packedLength);
      counter.blobsRead++;
      const plaintext = repository.cipher.decrypt(contentIv(entry.contentId), frame, what);
      manifestsByContent.set(entry.contentId, parseManifestContent(decompressContent(entry.compressionHeaderId, plaintext, what), what));
    });
    for (const id of manifestsByContent.keys()) if (!live.has(id)) manifestsByContent.delete(id);
  }

  async function attempt(counter: { blobsRead: number; keyDerivationMs: number }) {
    const repository = await openRepository(counter);
    const set = await selectIndexBlobs(repository, counter);
    if (set.blobs.length === 0 && (await store.list("q")).length > 0) {
      // A new repository has neither; packs without any index mean the index was lost or is
      // hidden from us, and "no snapshots" would be a lie.
      throw new RepositoryError("corrupt", "the repository has metadata packs but no index blobs");
    }
    const entryLists = await loadIndexEntries(repository, set.blobs, counter);
    const liveContents = mergeLiveEntries(entryLists);
    await loadManifestContents(repository, liveContents, counter);
    const mergeKey = [...liveContents.keys()].sort().join(",");
    if (lastMerge?.key !== mergeKey) {
      const ordered = [...liveContents.keys()].sort().map((id) => manifestsByContent.get(id)!);
      const snapshots: SnapshotManifest[] = [];
      const policies: PolicyManifest[] = [];
      for (const entry of mergeManifestEntries(ordered).values()) {
        if (entry.labels.type === policyManifestType) policies.push(toPolicyManifest(entry));
        if (entry.labels.type !== snapshotManifestType) continue;
        let snapshot = snapshotsByEntry.get(entry);
        if (snapshot === undefined) {
          snapshot = toSnapshotManifest(entry);
          snapshotsByEntry.set(entry, snapshot);
        }
        snapshots.push(snapshot);
      }
      lastMerge = { key: mergeKey, snapshots, policies };
    }
    return { snapshots: lastMerge.snapshots, policies: lastMerge.policies, indexBlobCount: set.blobs.length, manifestContentCount: liveContents.size };
  }

  return {
    async read() {
      const counter = { blobsRead: 0, keyDerivationMs: 0 };
      for (let attempts = 1; ; attempts++) {
        try {
          const result = await attempt(counter);
          return { ...result, blobsRead: counter.blobsRead, keyDerivationMs: counter.keyDerivationMs, attempts };
        } catch (error) {
          // A blob listed a moment ago and gone now was removed by kopia's cleanup: the next
          // listing no longer contains it. The format blob going missing is not that.
          const vanished = isRepositoryError(error, "not-found") && open !== undefined;
          if (!vanished || attempts > MISSING_BLOB_RETRIES) throw error;
          await sleep(MISSING_BLOB_RETRY_DELAY_MS);
        }
      }
    },
  };
}

/** kopia applies error correction outside the encryption: strip (and repair) it, then decrypt. */
function withErrorCorrection(config: RepositoryConfig, cipher: ContentCipher): ContentCipher {
  if (config.eccOverheadPercent === undefined) return cipher;
  const ecc = createEccDecoder(config.eccOverheadPercent);
  return { decrypt: (iv, frame, what) => cipher.decrypt(iv, ecc.decode(frame, what), what) };
}
