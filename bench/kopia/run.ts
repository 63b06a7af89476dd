// Benchmark of the native Kopia reader against the kopia CLI on a repository of 500 sources ×
// 20 snapshots made by the real kopia binary. The repository is built once and cached; each run
// works on a copy, so the "one new snapshot" step never changes the cached original.
//
// Run: ./node_modules/.bin/node bench/kopia/run.ts [--many-index-blobs] [--s3]
// --s3 measures the same repository shape in a bucket of a loopback versitygw, beside
// `kopia snapshot list --all --json` against the same bucket.

import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { cp, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { build } from "esbuild";
import type { BlobStore } from "../../webhook/kopia/blob-store.ts";
import { createFilesystemBlobStore } from "../../webhook/kopia/filesystem-blob-store.ts";
import { startVersityGw, versityGwStore } from "../../test/harness/versitygw.ts";
import { createKopiaCatalog } from "../../webhook/kopia/snapshot-catalog.ts";
import { forEachConcurrently } from "../../webhook/domain/bounded-concurrency.ts";
import {
  type KopiaRepository,
  attachKopiaRepository,
  binaryCacheDir,
  createKopiaRepository,
  createKopiaS3Repository,
  findKopiaBinary,
} from "../../test/harness/kopia.ts";

const kopiaVersion = "v0.22.3";
const hosts = 20;
const usersPerHost = 25;
const snapshotsPerSource = 20;
const password = "bench-password";

const execFileAsync = promisify(execFile);

function pad(n: number, width = 3) {
  return String(n).padStart(width, "0");
}

/**
 * Builds the repository: 20 real snapshots of one source at hourly start times, then kopia's own
 * copy-history fans them out to 25 users and then to 20 hosts (namespaces): 500 sources.
 */
async function buildRepository(binaryPath: string, workDir: string): Promise<KopiaRepository> {
  await rm(workDir, { recursive: true, force: true });
  const repository = await createKopiaRepository({ binaryPath, layout: "connect-then-create", password, workDir });
  return fillRepository(repository, workDir);
}

async function fillRepository<R extends KopiaRepository>(repository: R, workDir: string): Promise<R> {
  // Keep every snapshot: retention would otherwise thin out the history as it grows.
  await repository.run(["policy", "set", "--global", "--keep-latest=1000"]);
  const dir = await repository.makeSourceDir("data", { "config.yaml": "replicas: 1\n", "db.sqlite": "x".repeat(4096) });
  const firstSource = `app-${pad(0)}@bench-${pad(0, 2)}.example:/data`;
  const baseMs = Date.UTC(2026, 9, 1, 0, 0, 0);
  for (let i = 0; i < snapshotsPerSource; i++) {
    const start = new Date(baseMs + i * 3_600_000)
      .toISOString()
      .replace("T", " ")
      .replace(/\.\d+Z$/, " UTC");
    await writeFile(join(dir, "generation.txt"), String(i));
    await repository.snapshot(dir, { source: firstSource, startTime: start });
  }
  const users = Array.from({ length: usersPerHost - 1 }, (_, i) => i + 1);
  await forEachConcurrently(users, 2, async (u) => {
    await repository.run(["snapshot", "copy-history", firstSource.replace(":/data", ""), `app-${pad(u)}@bench-${pad(0, 2)}.example`]);
  });
  const hostsToFill = Array.from({ length: hosts - 1 }, (_, i) => i + 1);
  await forEachConcurrently(hostsToFill, 2, async (h) => {
    await repository.run(["snapshot", "copy-history", `@bench-${pad(0, 2)}.example`, `@bench-${pad(h, 2)}.example`]);
  });
  await writeFile(join(workDir, "complete.json"), JSON.stringify({ kopiaVersion, hosts, usersPerHost, snapshotsPerSource }));
  return repository;
}

/**
 * The other shape: every snapshot its own `kopia snapshot create`, as VolSync's movers do, so
 * each one leaves its own index blob (kopia folds them only when an epoch settles, after a day).
 */
async function buildIndexHeavyRepository(binaryPath: string, workDir: string, sources: number, perSource: number) {
  await rm(workDir, { recursive: true, force: true });
  const repository = await createKopiaRepository({ binaryPath, layout: "connect-then-create", password, workDir });
  const dir = await repository.makeSourceDir("data", { "config.yaml": "replicas: 1\n" });
  const jobs = Array.from({ length: sources * perSource }, (_, i) => ({ source: i % sources, n: Math.floor(i / sources) }));
  await forEachConcurrently(jobs, 3, async ({ source, n }) => {
    await repository.snapshot(dir, { source: `app-${pad(source)}@heavy-${pad(source % 20, 2)}.example:/data`, description: `#${n}` });
  });
  await writeFile(join(workDir, "complete.json"), JSON.stringify({ kopiaVersion, sources, perSource }));
}

async function measureIndexHeavy(binaryPath: string) {
  const sources = 500;
  const perSource = 2;
  const cachedDir = join(binaryCacheDir(), "..", "bench", `kopia-${sources}x${perSource}-separate-${kopiaVersion}`);
  if (!existsSync(join(cachedDir, "complete.json"))) {
    const started = performance.now();
    console.log(`building the index-heavy repository in ${cachedDir} (once, ${sources * perSource} kopia runs)…`);
    await buildIndexHeavyRepository(binaryPath, cachedDir, sources, perSource);
    console.log(`built in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
  const repository = attachKopiaRepository({ binaryPath, workDir: cachedDir, password });
  const indexBlobs = (await createFilesystemBlobStore({ rootPath: repository.rootPath }).list("x")).length;
  const kopiaStarted = performance.now();
  const kopiaCount = (JSON.parse(await repository.listSnapshotsJson()) as unknown[]).length;
  const kopiaMs = performance.now() - kopiaStarted;
  let keyDerivationMs = 0;
  const catalog = createKopiaCatalog({
    repositoryPath: repository.rootPath,
    passwordFile: repository.passwordFile,
    refreshIntervalMs: 3_600_000,
    freshnessBoundMs: 3_600_000,
    missRefreshTimeoutMs: 2_000,
    onRefresh: (o) => {
      if (o.ok) keyDerivationMs += o.keyDerivationMs;
    },
  });
  const started = performance.now();
  await catalog.start();
  catalog.stop();
  const loadMs = performance.now() - started - keyDerivationMs;
  const unchanged: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    await catalog.refresh();
    unchanged.push(performance.now() - t);
  }
  console.log(
    `\nindex-heavy repository: ${catalog.health().snapshots} snapshots (kopia lists ${kopiaCount}) from ${sources * perSource} separate kopia runs, ${indexBlobs} x blobs`,
  );
  console.log(`kopia snapshot list --all --json                 ${kopiaMs.toFixed(0).padStart(8)} ms`);
  console.log(`full load without key derivation                 ${loadMs.toFixed(0).padStart(8)} ms  ${(kopiaMs / loadMs).toFixed(1)}x faster`);
  console.log(`refresh, nothing new (median of 5)               ${median(unchanged).toFixed(1).padStart(8)} ms`);
}

/**
 * The catalog's steps on one repository, the same for every store: the cold load (its own key
 * derivation reported apart), twenty unchanged refreshes, then one refresh after kopia adds a
 * snapshot. Each step's time and the blobs it read.
 */
async function measureCatalogSteps(repository: KopiaRepository, location: { repositoryPath: string; passwordFile: string; store?: BlobStore }) {
  const outcomes: { keyDerivationMs?: number; blobsRead: number; durationMs: number }[] = [];
  const catalog = createKopiaCatalog({
    ...location,
    refreshIntervalMs: 3_600_000,
    freshnessBoundMs: 3_600_000,
    missRefreshTimeoutMs: 2_000,
    onRefresh: (o) => outcomes.push({ blobsRead: o.blobsRead, durationMs: o.durationMs, ...(o.ok ? { keyDerivationMs: o.keyDerivationMs } : {}) }),
  });
  const coldStarted = performance.now();
  await catalog.start();
  catalog.stop();
  const coldMs = performance.now() - coldStarted;
  const health = catalog.health();
  if (health.lastError !== null) throw new Error(health.lastError);
  const keyDerivationMs = outcomes[0]!.keyDerivationMs ?? 0;

  const unchanged: number[] = [];
  for (let i = 0; i < 20; i++) {
    const started = performance.now();
    await catalog.refresh();
    unchanged.push(performance.now() - started);
  }
  const unchangedBlobs = outcomes[outcomes.length - 1]!.blobsRead;

  const dir = await repository.makeSourceDir("one-more", { "a.txt": "one more" });
  await repository.snapshot(dir, { source: `app-${pad(7)}@bench-${pad(13, 2)}.example:/data` });
  const incrementalStarted = performance.now();
  await catalog.refresh();
  const incrementalMs = performance.now() - incrementalStarted;
  const incrementalBlobs = outcomes[outcomes.length - 1]!.blobsRead;
  if (catalog.health().snapshots !== health.snapshots + 1) throw new Error("the new snapshot was not found");
  return { catalog, coldMs, keyDerivationMs, unchanged, unchangedBlobs, incrementalMs, incrementalBlobs, health };
}

function median(values: number[]) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** `kopia snapshot list --all --json`, three runs: the median time and how many snapshots it listed. */
async function timeKopiaListing(repository: KopiaRepository, beforeEachRun: () => Promise<unknown> = async () => {}) {
  const kopiaRuns: number[] = [];
  let kopiaCount = 0;
  for (let i = 0; i < 3; i++) {
    await beforeEachRun();
    const started = performance.now();
    const out = await repository.listSnapshotsJson();
    kopiaRuns.push(performance.now() - started);
    kopiaCount = (JSON.parse(out) as unknown[]).length;
  }
  return { kopiaMs: median(kopiaRuns), kopiaCount };
}

type RssProbe = { baselineMiB: number; rssMiB: number; heapMiB: number; snapshots: number; lastError: string | null };

/**
 * rss-probe.ts, bundled like the server's dist/ build (so Node's TypeScript stripping is not in the
 * figure) and run on `repositoryPath` with only `env` (and PATH) beside its arguments when given.
 */
async function probeRss(workDir: string, repositoryPath: string, passwordFile: string, env?: Record<string, string>): Promise<RssProbe> {
  const bundlePath = join(workDir, "rss-probe.mjs");
  await build({
    entryPoints: [new URL("./rss-probe.ts", import.meta.url).pathname],
    bundle: true,
    platform: "node",
    format: "esm",
    outfile: bundlePath,
    logLevel: "error",
  });
  const options = env === undefined ? {} : { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env } };
  const probe = JSON.parse((await execFileAsync(process.execPath, ["--expose-gc", bundlePath, repositoryPath, passwordFile], options)).stdout) as RssProbe;
  if (probe.lastError !== null) throw new Error(probe.lastError);
  return probe;
}

type CatalogSteps = Awaited<ReturnType<typeof measureCatalogSteps>>;
type Row = [string, string, string];

/** kopia's listing against each catalog step, `extra` rows, then the probe's RSS. */
function comparisonRows(kopia: { label: string; ms: number }, steps: CatalogSteps, unchangedNote: string, probe: RssProbe, extra: Row[] = []): Row[] {
  const { coldMs, keyDerivationMs, unchanged, incrementalMs, incrementalBlobs } = steps;
  const kopiaMs = kopia.ms;
  const loadMs = coldMs - keyDerivationMs;
  return [
    [kopia.label, `${kopiaMs.toFixed(0)} ms`, "1.0x"],
    ["cold open + full load, total", `${coldMs.toFixed(0)} ms`, `${(kopiaMs / coldMs).toFixed(1)}x faster`],
    ["  of which key derivation (scrypt, once)", `${keyDerivationMs.toFixed(0)} ms`, ""],
    ["  full load without key derivation", `${loadMs.toFixed(0)} ms`, `${(kopiaMs / loadMs).toFixed(1)}x faster`],
    [`refresh, nothing new (median of 20; ${unchangedNote})`, `${median(unchanged).toFixed(2)} ms`, `${(kopiaMs / median(unchanged)).toFixed(0)}x faster`],
    [`refresh after one new snapshot (${incrementalBlobs} blobs read)`, `${incrementalMs.toFixed(1)} ms`, `${(kopiaMs / incrementalMs).toFixed(0)}x faster`],
    ...extra,
    [
      `RSS of a process holding the catalog (${probe.snapshots} snapshots)`,
      `${probe.rssMiB.toFixed(0)} MiB`,
      `before load ${probe.baselineMiB.toFixed(0)} MiB, heap ${probe.heapMiB.toFixed(0)} MiB`,
    ],
  ];
}

function printRows(rows: Row[]): void {
  const width = Math.max(...rows.map((r) => r[0].length));
  for (const [name, value, ratio] of rows) console.log(`${name.padEnd(width)}  ${value.padStart(12)}  ${ratio}`);
}

async function main() {
  const found = findKopiaBinary(kopiaVersion);
  if (!("path" in found)) {
    console.error(found.skipReason);
    process.exit(1);
  }
  const cachedDir = join(binaryCacheDir(), "..", "bench", `kopia-${hosts * usersPerHost}x${snapshotsPerSource}-${kopiaVersion}`);
  if (!existsSync(join(cachedDir, "complete.json"))) {
    const started = performance.now();
    console.log(`building the benchmark repository in ${cachedDir} (once)…`);
    await buildRepository(found.path, cachedDir);
    console.log(`built in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }

  // Work on a copy, connected with its own kopia config.
  const workDir = await mkdtemp(join(tmpdir(), "pvc-guardian-bench-kopia-"));
  await cp(join(cachedDir, "repository"), join(workDir, "repository"), { recursive: true });
  await writeFile(join(workDir, "password"), password);
  const repository = attachKopiaRepository({ binaryPath: found.path, workDir, password });
  await repository.run(["repository", "connect", "filesystem", `--path=${repository.rootPath}`, "--override-username=bench", "--override-hostname=bench"]);

  try {
    const store = createFilesystemBlobStore({ rootPath: repository.rootPath });
    const indexBlobs = (await store.list("x")).length;

    // kopia CLI: the same listing, three runs.
    const { kopiaMs, kopiaCount } = await timeKopiaListing(repository);

    const identity = `app-${pad(7)}@bench-${pad(13, 2)}.example:/data`;
    const steps = await measureCatalogSteps(repository, { repositoryPath: repository.rootPath, passwordFile: repository.passwordFile });

    const nowMs = Date.now();
    const lookups = 1_000_000;
    let found20 = 0;
    const lookupStarted = performance.now();
    for (let i = 0; i < lookups; i++) {
      const answer = steps.catalog.lookup(identity, nowMs);
      if (answer.readable) found20 += answer.snapshots.length;
    }
    const lookupUs = ((performance.now() - lookupStarted) * 1000) / lookups;
    if (found20 !== lookups * (snapshotsPerSource + 1)) throw new Error("lookup returned the wrong snapshots");

    const probe = await probeRss(workDir, repository.rootPath, repository.passwordFile);
    const rows = comparisonRows({ label: "kopia snapshot list --all --json (median of 3)", ms: kopiaMs }, steps, `${steps.unchangedBlobs} blob read`, probe, [
      ["lookup of one identity (mean of 1e6)", `${lookupUs.toFixed(3)} µs`, ""],
    ]);
    console.log(
      `\nrepository: ${steps.health.sources} sources, ${steps.health.snapshots} snapshots (kopia lists ${kopiaCount}), ${indexBlobs} x blobs; kopia ${kopiaVersion}; node ${process.version}`,
    );
    printRows(rows);
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}

/**
 * The same 500 × 20 repository in S3: kopia writes it into a bucket of a versitygw over a cached
 * folder (built once); each run serves a copy of that folder, so the new snapshot never lands in
 * the cache, and connects a fresh kopia to it.
 */
async function measureS3(binaryPath: string) {
  const cachedDir = join(binaryCacheDir(), "..", "bench", `kopia-s3-${hosts * usersPerHost}x${snapshotsPerSource}-${kopiaVersion}`);
  const bucket = "bench";
  const prefix = "volsync/";
  if (!existsSync(join(cachedDir, "complete.json"))) {
    await rm(cachedDir, { recursive: true, force: true });
    const started = performance.now();
    console.log(`building the S3 benchmark bucket in ${cachedDir} (once)…`);
    const server = await startVersityGw({ workDir: join(cachedDir, "gw") });
    try {
      await server.createBucket(bucket);
      await mkdir(join(cachedDir, "kopia"), { recursive: true });
      const repository = await createKopiaS3Repository({
        binaryPath,
        password,
        workDir: join(cachedDir, "kopia"),
        location: { bucket, prefix, endpoint: server.endpoint, accessKey: server.accessKey, secretKey: server.secretKey, useTls: false },
      });
      await fillRepository(repository, join(cachedDir, "kopia"));
    } finally {
      await server.dispose();
    }
    await writeFile(join(cachedDir, "complete.json"), JSON.stringify({ kopiaVersion, hosts, usersPerHost, snapshotsPerSource }));
    console.log(`built in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }

  const workDir = await mkdtemp(join(tmpdir(), "pvc-guardian-bench-kopia-s3-"));
  await cp(join(cachedDir, "gw"), join(workDir, "gw"), { recursive: true });
  const server = await startVersityGw({ workDir: join(workDir, "gw") });
  try {
    await writeFile(join(workDir, "password"), password);
    const repository = attachKopiaRepository({ binaryPath, workDir, password });
    await repository.run([
      "repository",
      "connect",
      "s3",
      `--bucket=${bucket}`,
      `--prefix=${prefix}`,
      `--endpoint=${server.endpoint}`,
      "--disable-tls",
      `--access-key=${server.accessKey}`,
      `--secret-access-key=${server.secretKey}`,
      "--override-username=bench",
      "--override-hostname=bench",
    ]);
    const store = versityGwStore(server, bucket, prefix);
    const indexBlobs = (await store.list("x")).length;

    // A cold kopia, as in a pod: its cache would otherwise hold the index blobs from the last run.
    const { kopiaMs, kopiaCount } = await timeKopiaListing(repository, () => repository.run(["cache", "clear"]));

    const steps = await measureCatalogSteps(repository, { repositoryPath: `s3://${bucket}/${prefix}`, passwordFile: join(workDir, "password"), store });

    const probe = await probeRss(workDir, `s3://${bucket}/${prefix}`, join(workDir, "password"), {
      AWS_ACCESS_KEY_ID: server.accessKey,
      AWS_SECRET_ACCESS_KEY: server.secretKey,
      AWS_S3_ENDPOINT: server.endpoint,
      AWS_S3_DISABLE_TLS: "true",
    });
    const rows = comparisonRows(
      { label: "kopia snapshot list --all --json, cache cleared (median of 3)", ms: kopiaMs },
      steps,
      `${steps.unchangedBlobs} blob read, 1 listing`,
      probe,
    );
    console.log(`
S3 (versitygw ${server.endpoint}, HTTP on loopback): ${steps.health.sources} sources, ${steps.health.snapshots} snapshots (kopia lists ${kopiaCount}), ${indexBlobs} x blobs; kopia ${kopiaVersion}; node ${process.version}`);
    printRows(rows);
  } finally {
    await server.dispose();
    await rm(workDir, { recursive: true, force: true });
  }
}

if (!process.argv.includes("--s3") || process.argv.includes("--filesystem")) await main();
if (process.argv.includes("--s3")) {
  const found = findKopiaBinary(kopiaVersion);
  if (!("path" in found)) throw new Error(found.skipReason);
  await measureS3(found.path);
}
if (process.argv.includes("--many-index-blobs")) {
  const found = findKopiaBinary(kopiaVersion);
  if ("path" in found) await measureIndexHeavy(found.path);
}
