// Real S3 repositories: the real kopia writes them into a real S3 server (versitygw over a
// temporary folder) on loopback, and pvc-guardian's listing must equal `kopia snapshot list --all
// --json` on the same bucket, by path-style and virtual-hosted addressing, over HTTP and TLS.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import type { LookupFunction } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createCertificateAuthority, issueServerCertificate } from "../../../certs/pki.ts";
import { readPasswordFile } from "../../../webhook/kopia/password-file.ts";
import { createRepositoryReader } from "../../../webhook/kopia/repository-reader.ts";
import type { BlobStore } from "../../../webhook/kopia/blob-store.ts";
import { formatSnapshotListJson } from "../../../webhook/kopia/snapshot-list-output.ts";
import { computeRetentionReasons } from "../../../webhook/kopia/snapshot-retention.ts";
import { requireBinary } from "../../harness/binaries.ts";
import { type KopiaS3Location, createKopiaS3Repository, loadCatalogOnce } from "../../harness/kopia.ts";
import { type VersityGw, startVersityGw, versityGwSkip, versityGwStore } from "../../harness/versitygw.ts";
import { assertListingMatchesKopia, createRecordingBlobStore, groupByIdentity, runOurListing } from "./kopia-comparison.ts";

/** Resolves `localhost` and `<bucket>.localhost` to 127.0.0.1 and nothing else: loopback only. */
export const loopbackLookup: LookupFunction = (hostname, options, callback) => {
  if (hostname !== "localhost" && !hostname.endsWith(".localhost")) {
    callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: "ENOTFOUND" }), "", 4);
    return;
  }
  if (typeof options === "object" && options.all)
    (callback as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [{ address: "127.0.0.1", family: 4 }]);
  else callback(null, "127.0.0.1", 4);
};

const skip = versityGwSkip();
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function makeRepository(server: VersityGw, bucket: string, prefix: string, extra: { caFile?: string; eccOverheadPercent?: number } = {}) {
  const location: KopiaS3Location = {
    bucket,
    prefix,
    endpoint: server.endpoint,
    accessKey: server.accessKey,
    secretKey: server.secretKey,
    useTls: server.useTls,
    ...(extra.caFile ? { caFile: extra.caFile } : {}),
  };
  const repository = await createKopiaS3Repository({
    binaryPath: requireBinary("kopia"),
    location,
    ...(extra.eccOverheadPercent !== undefined ? { eccOverheadPercent: extra.eccOverheadPercent } : {}),
  });
  cleanups.push(() => repository.dispose());
  return repository;
}

async function snapshotEach(repository: Awaited<ReturnType<typeof makeRepository>>, identities: string[]) {
  const ids: string[] = [];
  for (const [i, identity] of identities.entries()) {
    const dir = await repository.makeSourceDir(`src-${i}-${ids.length}`, { "file.txt": `${identity} ${Date.now()}` });
    ids.push(await repository.snapshot(dir, { source: identity }));
  }
  return ids;
}

/** What `pvc-guardian snapshots --json` prints, through a given store (the CLI's path after parsing). */
async function listThrough(store: BlobStore, passwordFile: string) {
  const { snapshots, policies } = await createRepositoryReader({ store, readPassword: () => readPasswordFile(passwordFile) }).read();
  return formatSnapshotListJson(snapshots, computeRetentionReasons(snapshots, policies));
}

describe("S3 repositories on a real S3 server over HTTP", { skip }, () => {
  let server: VersityGw;
  before(async () => {
    server = await startVersityGw({ virtualDomain: "localhost" });
    cleanups.push(() => server.dispose());
    await server.createBucket("backups");
  });

  it("lists what kopia lists through snapshots, deletions and full maintenance (path-style)", async () => {
    const repository = await makeRepository(server, "backups", "app/");
    assert.deepEqual(await assertListingMatchesKopia(repository), []);
    const taken = await snapshotEach(repository, ["app@default:/data", "db@team-a:/data", "app@default:/data", "web@team-b:/srv"]);
    await assertListingMatchesKopia(repository);
    await repository.deleteSnapshot(taken[1]!);
    const afterDelete = await assertListingMatchesKopia(repository);
    assert.ok(!afterDelete.some((s) => s.id === taken[1]), "a deleted snapshot stays deleted");
    await repository.runFullMaintenance();
    assert.deepEqual(await assertListingMatchesKopia(repository), afterDelete);

    // The catalog the server builds from the same bucket gives every identity kopia's snapshots.
    const catalog = await loadCatalogOnce(repository, versityGwStore(server, "backups", "app/"));
    assert.equal(catalog.health().lastError, null);
    for (const [identity, snapshots] of groupByIdentity(afterDelete)) {
      const answer = catalog.lookup(identity, Date.now());
      assert.ok(answer.readable);
      assert.deepEqual(
        answer.snapshots.map((s) => s.id),
        snapshots.map((s) => s.id),
      );
    }
  });

  it("keeps two repositories under different prefixes of one bucket apart", async () => {
    const first = await makeRepository(server, "backups", "team-a/");
    const second = await makeRepository(server, "backups", "team-a-archive/");
    await snapshotEach(first, ["app@team-a:/data"]);
    await snapshotEach(second, ["old@team-a:/data", "older@team-a:/data"]);
    assert.equal((await assertListingMatchesKopia(first)).length, 1);
    assert.equal((await assertListingMatchesKopia(second)).length, 2);
  });

  it("lists what kopia lists with virtual-hosted addressing (bucket.localhost on loopback)", async () => {
    const repository = await makeRepository(server, "backups", "virtual/");
    await snapshotEach(repository, ["app@default:/data", "db@default:/data"]);
    const store = versityGwStore(server, "backups", "virtual/", {
      endpoint: `localhost:${server.port}`,
      addressing: "virtual-hosted",
      lookup: loopbackLookup,
    });
    assert.equal(await listThrough(store, repository.passwordFile), await repository.listSnapshotsJson());
  });

  it("refreshes incrementally: nothing new reads only the format blob and lists only the index prefix", async () => {
    const repository = await makeRepository(server, "backups", "incremental/");
    await snapshotEach(repository, ["app@default:/data", "db@default:/data"]);
    const inner = versityGwStore(server, "backups", "incremental/");
    const recording = createRecordingBlobStore(inner);
    const listed: string[] = [];
    const store = { ...recording.store, list: (prefix: string) => (listed.push(prefix), inner.list(prefix)) };
    const reader = createRepositoryReader({ store, readPassword: () => readPasswordFile(repository.passwordFile) });
    const first = await reader.read();
    assert.equal(first.snapshots.length, 2);
    const firstReads = recording.takeReads();
    assert.ok(
      firstReads.some((id) => id.startsWith("xn")),
      "the first read loads the index blobs",
    );
    listed.length = 0;

    const unchanged = await reader.read();
    assert.equal(unchanged.snapshots.length, 2);
    assert.deepEqual(recording.takeReads(), ["kopia.repository"], "nothing new: only the format blob is read again");
    assert.deepEqual(listed, ["x"], "and only the epoch index prefix is listed, as kopia's epoch manager lists it");
    listed.length = 0;

    await snapshotEach(repository, ["web@default:/data"]);
    const grown = await reader.read();
    assert.equal(grown.snapshots.length, 3);
    const grownReads = recording.takeReads();
    assert.ok(!grownReads.some((id) => firstReads.includes(id) && id.startsWith("x")), `index blobs read before are not read again: ${grownReads.join(", ")}`);
    assert.equal(await listThrough(store, repository.passwordFile), await repository.listSnapshotsJson());
  });
});

describe("S3 repositories on a real S3 server over TLS", { skip }, () => {
  let server: VersityGw;
  let pkiDir: string;
  let caFile: string;
  before(async () => {
    pkiDir = await mkdtemp(join(tmpdir(), "pvc-guardian-s3-pki-"));
    cleanups.push(() => rm(pkiDir, { recursive: true, force: true }));
    const ca = await createCertificateAuthority(pkiDir, { commonName: "pvc-guardian test S3 CA" });
    caFile = ca.certPath;
    const certificate = await issueServerCertificate(ca, pkiDir, { commonName: "versitygw", ipAddresses: ["127.0.0.1"], dnsNames: ["localhost"] });
    server = await startVersityGw({ tls: { certPath: certificate.certPath, keyPath: certificate.keyPath } });
    cleanups.push(() => server.dispose());
    await server.createBucket("secure");
  });

  it("lists what kopia lists when the CA bundle is given, and names TLS when it is not", async () => {
    const repository = await makeRepository(server, "secure", "app/", { caFile });
    await snapshotEach(repository, ["app@default:/data", "db@default:/data"]);
    const withCa = await runOurListing(repository, ["--json", "--s3-ca-file", caFile]);
    assert.equal(withCa.exitCode, 0, withCa.stderr);
    assert.equal(withCa.stdout, await repository.listSnapshotsJson());

    const withoutCa = await runOurListing(repository, ["--json"]);
    assert.equal(withoutCa.exitCode, 1);
    assert.match(withoutCa.stderr, /TLS to the S3 endpoint 127\.0\.0\.1:\d+ failed/);
  });
});
