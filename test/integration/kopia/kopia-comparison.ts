// Shared by the real-repository tests: our listing next to kopia's, and a blob store that records
// which blobs were read.

import assert from "node:assert/strict";
import type { BlobStore } from "../../../webhook/kopia/blob-store.ts";
import { runSnapshotsCommand } from "../../../webhook/cli/snapshots.ts";
import type { KopiaRepository } from "../../harness/kopia.ts";

/** `s3Environment`: the repository Secret's keys, handed to the CLI as the mover gets them. */
export async function runOurListing(
  repository: { rootPath: string; passwordFile: string; s3Environment?: Record<string, string> },
  extraArgs: string[] = ["--json"],
) {
  let stdout = "";
  let stderr = "";
  const exitCode = await runSnapshotsCommand(["--repository", repository.rootPath, "--password-file", repository.passwordFile, ...extraArgs], {
    stdout: (s) => (stdout += s),
    stderr: (s) => (stderr += s),
    ...(repository.s3Environment ? { env: repository.s3Environment } : {}),
  });
  return { exitCode, stdout, stderr };
}

type ListedSnapshot = { id: string; source: { host: string; userName: string; path: string }; retentionReason?: unknown; incomplete?: string };

/**
 * Asserts that `pvc-guardian snapshots --json` equals `kopia snapshot list --all --json`: the
 * same entries field for field (retention reasons included) and the same bytes, and the same
 * for both with `--no-retention`. Returns kopia's entries without the retention reasons.
 */
export async function assertListingMatchesKopia(repository: KopiaRepository & { s3Environment?: Record<string, string> }): Promise<ListedSnapshot[]> {
  const ours = await runOurListing(repository);
  assert.equal(ours.exitCode, 0, ours.stderr);
  const kopiaText = await repository.listSnapshotsJson();
  assert.deepEqual(JSON.parse(ours.stdout), JSON.parse(kopiaText));
  assert.equal(ours.stdout, kopiaText);
  const oursWithout = await runOurListing(repository, ["--json", "--no-retention"]);
  assert.equal(oursWithout.stdout, await repository.listSnapshotsJson(["--no-retention"]));
  return (JSON.parse(kopiaText) as ListedSnapshot[]).map(({ retentionReason: _computed, ...rest }) => rest);
}

export function identityOf(snapshot: ListedSnapshot): string {
  return `${snapshot.source.userName}@${snapshot.source.host}:${snapshot.source.path}`;
}

export function groupByIdentity(snapshots: ListedSnapshot[]): Map<string, ListedSnapshot[]> {
  const groups = new Map<string, ListedSnapshot[]>();
  for (const s of snapshots) groups.set(identityOf(s), [...(groups.get(identityOf(s)) ?? []), s]);
  return groups;
}

/** A BlobStore that remembers every blob it was asked to read, whole or by range. */
export function createRecordingBlobStore(inner: BlobStore) {
  const reads: string[] = [];
  const store: BlobStore = {
    location: inner.location,
    list: (prefix) => inner.list(prefix),
    read: (id) => {
      reads.push(id);
      return inner.read(id);
    },
    readRange: (id, offset, length) => {
      reads.push(`${id}@${offset}+${length}`);
      return inner.readRange(id, offset, length);
    },
  };
  return { store, reads, takeReads: () => reads.splice(0, reads.length) };
}
