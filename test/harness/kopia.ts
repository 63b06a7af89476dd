// Drives the real kopia binary for tests and benchmarks: repositories in temporary folders, each
// with its own config file, cache and log folder, so nothing touches ~/.config or ~/.cache/kopia.

import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { binDir, binaryPath, findBinary, requireOrSkip } from "./binaries.ts";
import type { BlobStore } from "../../webhook/kopia/blob-store.ts";
import { createKopiaCatalog, type KopiaCatalog } from "../../webhook/kopia/snapshot-catalog.ts";

const execFileAsync = promisify(execFile);

/** The kopia versions VolSync's mover shipped that the harness builds. */
export const kopiaVersions = ["v0.22.3", "v0.21.1"] as const;
export type KopiaVersion = (typeof kopiaVersions)[number];

/** Where the harness caches binaries (binaries.ts owns the layout). */
export const binaryCacheDir = binDir;

/** The path of the cached kopia binary, or why it is not there. */
export function findKopiaBinary(version: KopiaVersion = "v0.22.3"): { path: string } | { skipReason: string } {
  const path = findBinary("kopia", version);
  if (path !== undefined) return { path };
  return { skipReason: `kopia ${version} is not at ${binaryPath("kopia", version)}; build it with test/harness/build-binaries.sh` };
}

/** The `skip` option for node:test, through the one skip mechanism (binaries.ts requireOrSkip). */
export function kopiaSkip(version: KopiaVersion = "v0.22.3"): string | false {
  return requireOrSkip([{ name: "kopia", version }]);
}

export type KopiaEncryption = "AES256-GCM-HMAC-SHA256" | "CHACHA20-POLY1305-HMAC-SHA256";

export type KopiaRepositoryOptions = {
  binaryPath: string;
  /**
   * `create`: `repository create` on an empty folder (kopia writes `.shards` [1,3]).
   * `connect-then-create`: a `repository connect` that fails first, as VolSync's mover does in
   * `ensure_connected`, then `create` ([3,3], see the format notes).
   */
  layout: "create" | "connect-then-create";
  encryption?: KopiaEncryption;
  password?: string;
  /** Repository format version; 1 gives the compaction-log (`n` blob) index. */
  formatVersion?: 1 | 2 | 3;
  keyDerivation?: "scrypt-65536-8-1" | "pbkdf2-sha256-600000";
  /** Where to create the temporary folder (defaults to the OS temp dir). */
  parentDir?: string;
  /** Use an existing folder instead of creating one (for cached benchmark repositories). */
  workDir?: string;
  /** kopia's error correction: `--ecc=REED-SOLOMON-CRC32 --ecc-overhead-percent=N`. */
  eccOverheadPercent?: number;
};

/** Where `repository create s3` puts a repository, as `kopia repository create s3` flags name it. */
export type KopiaS3Location = {
  bucket: string;
  /** kopia's --prefix, as the mover passes it (`app/`), or empty. */
  prefix: string;
  /** `host:port`. */
  endpoint: string;
  accessKey: string;
  secretKey: string;
  useTls: boolean;
  /** A PEM file kopia trusts for the endpoint (its --root-ca-pem-path). */
  caFile?: string;
};

export type KopiaSnapshotOptions = {
  /** `username@hostname:/path`, the way VolSync's mover names its sources. */
  source: string;
  description?: string;
  startTime?: string;
  endTime?: string;
  tags?: Record<string, string>;
  /** kopia's --upload-limit-mb: a larger source ends as an incomplete ("limit reached") snapshot. */
  uploadLimitMb?: number;
};

export type KopiaRepository = {
  workDir: string;
  rootPath: string;
  passwordFile: string;
  password: string;
  /** Runs kopia with this repository's config file; rejects with stderr on a non-zero exit. */
  run(args: string[]): Promise<{ stdout: string; stderr: string }>;
  /** Starts kopia with this repository's config and does not wait: for tests that kill it midway. */
  spawn(args: string[]): ChildProcess;
  /** Snapshots `dir` as `source` (kopia's --override-source) and returns the manifest ID. */
  snapshot(dir: string, options: KopiaSnapshotOptions): Promise<string>;
  deleteSnapshot(manifestId: string): Promise<void>;
  /** Full maintenance with safety off, so compaction and rewrites happen now, not in hours. */
  runFullMaintenance(): Promise<void>;
  /** The verbatim stdout of `kopia snapshot list --all --json`. */
  listSnapshotsJson(extraArgs?: string[]): Promise<string>;
  /** Writes a small directory tree to snapshot and returns its path. */
  makeSourceDir(name: string, files: Record<string, string>): Promise<string>;
  dispose(): Promise<void>;
};

export async function createKopiaRepository(options: KopiaRepositoryOptions): Promise<KopiaRepository> {
  const workDir = options.workDir ?? (await mkdtemp(join(options.parentDir ?? tmpdir(), "pvc-guardian-kopia-")));
  const rootPath = join(workDir, "repository");
  const password = options.password ?? "correct horse battery staple";
  const passwordFile = join(workDir, "password");
  await mkdir(rootPath, { recursive: true });
  await writeFile(passwordFile, password, { mode: 0o600 });
  const repository = attachKopiaRepository({ binaryPath: options.binaryPath, workDir, password });

  const createArgs = ["repository", "create", "filesystem", `--path=${rootPath}`, "--override-username=maintenance", "--override-hostname=volsync"];
  if (options.encryption) createArgs.push(`--encryption=${options.encryption}`);
  if (options.formatVersion) createArgs.push(`--format-version=${options.formatVersion}`);
  if (options.keyDerivation) createArgs.push(`--format-block-key-derivation-algorithm=${options.keyDerivation}`);
  createArgs.push(...eccArgs(options.eccOverheadPercent));
  if (options.layout === "connect-then-create") {
    const connected = await repository
      .run(["repository", "connect", "filesystem", `--path=${rootPath}`, "--override-username=maintenance", "--override-hostname=volsync"])
      .then(
        () => true,
        () => false,
      );
    if (connected) throw new Error(`kopia connected to ${rootPath} although no repository exists there`);
  }
  await repository.run(createArgs);
  return repository;
}

function eccArgs(overheadPercent: number | undefined): string[] {
  return overheadPercent === undefined ? [] : ["--ecc=REED-SOLOMON-CRC32", `--ecc-overhead-percent=${overheadPercent}`];
}

/** `kopia repository create s3 …` on a bucket; rootPath is `s3://bucket/prefix` (for the CLI's --repository). */
export async function createKopiaS3Repository(
  options: Omit<KopiaRepositoryOptions, "layout" | "formatVersion"> & { location: KopiaS3Location },
): Promise<KopiaRepository & { location: KopiaS3Location; s3Environment: Record<string, string> }> {
  const workDir = options.workDir ?? (await mkdtemp(join(options.parentDir ?? tmpdir(), "pvc-guardian-kopia-s3-")));
  const password = options.password ?? "correct horse battery staple";
  await writeFile(join(workDir, "password"), password, { mode: 0o600 });
  const repository = attachKopiaRepository({ binaryPath: options.binaryPath, workDir, password });
  const { location } = options;
  const createArgs = [
    "repository",
    "create",
    "s3",
    `--bucket=${location.bucket}`,
    `--endpoint=${location.endpoint}`,
    `--access-key=${location.accessKey}`,
    `--secret-access-key=${location.secretKey}`,
    "--override-username=maintenance",
    "--override-hostname=volsync",
  ];
  if (location.prefix !== "") createArgs.push(`--prefix=${location.prefix}`);
  if (!location.useTls) createArgs.push("--disable-tls");
  if (location.caFile) createArgs.push(`--root-ca-pem-path=${location.caFile}`);
  if (options.encryption) createArgs.push(`--encryption=${options.encryption}`);
  if (options.keyDerivation) createArgs.push(`--format-block-key-derivation-algorithm=${options.keyDerivation}`);
  createArgs.push(...eccArgs(options.eccOverheadPercent));
  await repository.run(createArgs);
  return {
    ...repository,
    rootPath: `s3://${location.bucket}/${location.prefix}`,
    location,
    // The keys VolSync's mover reads from the repository Secret.
    s3Environment: {
      AWS_ACCESS_KEY_ID: location.accessKey,
      AWS_SECRET_ACCESS_KEY: location.secretKey,
      AWS_S3_ENDPOINT: location.useTls ? `https://${location.endpoint}` : `http://${location.endpoint}`,
      AWS_S3_DISABLE_TLS: location.useTls ? "false" : "true",
      AWS_REGION: "us-east-1",
      KOPIA_REPOSITORY: `s3://${location.bucket}/${location.prefix}`,
      KOPIA_PASSWORD: password,
    },
  };
}

/** Wraps an existing work dir (repository/, password, config) created by createKopiaRepository. */
export function attachKopiaRepository(options: { binaryPath: string; workDir: string; password: string }): KopiaRepository {
  const { binaryPath, workDir, password } = options;
  const rootPath = join(workDir, "repository");
  const passwordFile = join(workDir, "password");
  const env = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: workDir,
    KOPIA_PASSWORD: password,
    KOPIA_CHECK_FOR_UPDATES: "false",
    KOPIA_PERSIST_CREDENTIALS_ON_CONNECT: "false",
  };
  const common = [`--config-file=${join(workDir, "kopia.config")}`, `--log-dir=${join(workDir, "logs")}`, "--no-progress"];

  async function run(args: string[]) {
    const cacheArgs = args[0] === "repository" && (args[1] === "create" || args[1] === "connect") ? [`--cache-directory=${join(workDir, "cache")}`] : [];
    try {
      const { stdout, stderr } = await execFileAsync(binaryPath, [...args, ...cacheArgs, ...common], {
        env,
        maxBuffer: 512 * 1024 * 1024,
      });
      return { stdout, stderr };
    } catch (error) {
      const failure = error as { stderr?: string; message: string };
      throw new Error(`kopia ${args.join(" ")} failed: ${failure.stderr?.trim() || failure.message}`);
    }
  }

  return {
    workDir,
    rootPath,
    passwordFile,
    password,
    run,
    spawn(args) {
      return spawn(binaryPath, [...args, ...common], { env, stdio: "ignore" });
    },
    async snapshot(dir, snapshotOptions) {
      const args = ["snapshot", "create", dir, `--override-source=${snapshotOptions.source}`, "--json"];
      if (snapshotOptions.description !== undefined) args.push(`--description=${snapshotOptions.description}`);
      if (snapshotOptions.startTime !== undefined) args.push(`--start-time=${snapshotOptions.startTime}`);
      if (snapshotOptions.endTime !== undefined) args.push(`--end-time=${snapshotOptions.endTime}`);
      for (const [key, value] of Object.entries(snapshotOptions.tags ?? {})) args.push(`--tags=${key}:${value}`);
      if (snapshotOptions.uploadLimitMb !== undefined) args.push(`--upload-limit-mb=${snapshotOptions.uploadLimitMb}`);
      const { stdout } = await run(args);
      const created = JSON.parse(stdout) as { id?: string };
      if (typeof created.id !== "string" || created.id === "") throw new Error(`kopia snapshot create printed no id: ${stdout}`);
      return created.id;
    },
    async deleteSnapshot(manifestId) {
      await run(["snapshot", "delete", manifestId, "--delete"]);
    },
    async runFullMaintenance() {
      await run(["maintenance", "run", "--full", "--safety=none"]);
    },
    async listSnapshotsJson(extraArgs = []) {
      return (await run(["snapshot", "list", "--all", "--json", ...extraArgs])).stdout;
    },
    async makeSourceDir(name, files) {
      const dir = join(workDir, "sources", name);
      await mkdir(dir, { recursive: true });
      for (const [file, content] of Object.entries(files)) await writeFile(join(dir, file), content);
      return dir;
    },
    async dispose() {
      await rm(workDir, { recursive: true, force: true });
    },
  };
}

/** kopia's `.shards` file of a repository, parsed. */
export async function readShards(rootPath: string): Promise<unknown> {
  return JSON.parse(await readFile(join(rootPath, ".shards"), "utf8"));
}

/**
 * A catalog over a real repository that has read it once and runs no timer: what tests compare
 * with kopia's own listing. `lastError` is left for the caller to check.
 */
export async function loadCatalogOnce(repository: { rootPath: string; passwordFile: string }, store?: BlobStore): Promise<KopiaCatalog> {
  const catalog = createKopiaCatalog({
    repositoryPath: repository.rootPath,
    passwordFile: repository.passwordFile,
    ...(store ? { store } : {}),
    refreshIntervalMs: 3_600_000,
    freshnessBoundMs: 60_000,
    missRefreshTimeoutMs: 2_000,
  });
  await catalog.start();
  catalog.stop();
  return catalog;
}
