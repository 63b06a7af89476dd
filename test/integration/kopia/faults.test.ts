// Every way the repository can fail to be read ends in an unreadable answer with a reason, never
// in an authoritative "no snapshots": that answer would let an empty volume replace backed-up data.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createCipheriv, randomBytes, hkdfSync } from "node:crypto";
import { chmod, cp, mkdir, mkdtemp, readFile, readdir, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { BlobStore } from "../../../webhook/kopia/blob-store.ts";
import { createFilesystemBlobStore } from "../../../webhook/kopia/filesystem-blob-store.ts";
import { decryptConfigJson, deriveFormatKey, parseFormatEnvelope } from "../../../webhook/kopia/format-blob.ts";
import { createRepositoryReader } from "../../../webhook/kopia/repository-reader.ts";
import { createKopiaCatalog } from "../../../webhook/kopia/snapshot-catalog.ts";
import { type KopiaRepository, createKopiaRepository, findKopiaBinary, kopiaSkip } from "../../harness/kopia.ts";
import { runOurListing } from "./kopia-comparison.ts";

const identity = "app@default:/data";
const skip = kopiaSkip("v0.22.3");

describe("faults on a real kopia v0.22.3 repository", { skip }, () => {
  let original: KopiaRepository;
  let scratch: string;
  let snapshotId: string;

  before(async () => {
    const found = findKopiaBinary("v0.22.3");
    if (!("path" in found)) return;
    original = await createKopiaRepository({ binaryPath: found.path, layout: "connect-then-create" });
    snapshotId = await original.snapshot(await original.makeSourceDir("data", { "a.txt": "precious" }), { source: identity });
    await original.snapshot(await original.makeSourceDir("other", { "b.txt": "other" }), { source: "other@ns:/data" });
    scratch = await mkdtemp(join(tmpdir(), "pvc-guardian-faults-"));
  });
  after(async () => {
    await original?.dispose();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  /** An independent copy of the healthy repository to break. */
  async function copyRepository(name: string) {
    const rootPath = join(scratch, name, "repository");
    await cp(original.rootPath, rootPath, { recursive: true });
    const passwordFile = join(scratch, name, "password");
    await writeFile(passwordFile, original.password);
    return { rootPath, passwordFile };
  }

  async function filesUnder(dir: string, prefix: string): Promise<string[]> {
    const entries = await readdir(dir, { recursive: true, withFileTypes: true });
    return entries
      .filter((e) => e.isFile() && e.name.endsWith(".f"))
      .map((e) => join(e.parentPath, e.name))
      .filter((path) =>
        path
          .slice(dir.length + 1)
          .replaceAll("/", "")
          .startsWith(prefix),
      );
  }

  function createCatalog(repository: { rootPath: string; passwordFile: string }, extra: { now?: () => number; store?: BlobStore } = {}) {
    return createKopiaCatalog({
      repositoryPath: repository.rootPath,
      passwordFile: repository.passwordFile,
      refreshIntervalMs: 3_600_000,
      freshnessBoundMs: 60_000,
      missRefreshTimeoutMs: 2_000,
      ...extra,
    });
  }

  /** The CLI fails with the expected kind, and the catalog answers unreadable with a reason. */
  async function assertUnreadable(repository: { rootPath: string; passwordFile: string }, kind: string) {
    const listing = await runOurListing(repository);
    assert.equal(listing.exitCode, 1, listing.stdout);
    assert.equal(listing.stdout, "");
    assert.match(listing.stderr, new RegExp(`\\(${kind}\\)`));

    const catalog = createCatalog(repository);
    await catalog.start();
    catalog.stop();
    const answer = await catalog.lookupWithRefreshOnMiss(identity, Date.now());
    assert.equal(answer.readable, false);
    assert.ok(!answer.readable && answer.reason.includes(kind), `reason names the failure: ${JSON.stringify(answer)}`);
    const health = catalog.health();
    assert.equal(health.lastSuccessMs, null);
    assert.ok(health.lastError?.startsWith(kind));
    assert.ok(health.refreshFailuresTotal >= 1);
  }

  it("answers readable with the snapshot on the healthy copy (the control case)", async () => {
    const repository = await copyRepository("control");
    const catalog = createCatalog(repository);
    await catalog.start();
    catalog.stop();
    const answer = catalog.lookup(identity, Date.now());
    assert.ok(answer.readable);
    assert.deepEqual(
      answer.snapshots.map((s) => s.id),
      [snapshotId],
    );
  });

  it("reports a wrong password", async () => {
    const repository = await copyRepository("wrong-password");
    await writeFile(repository.passwordFile, "not the password\n");
    await assertUnreadable(repository, "wrong-password");
  });

  it("accepts a password file that ends with a newline the password does not have", async () => {
    const repository = await copyRepository("newline");
    await writeFile(repository.passwordFile, `${original.password}\n`);
    const listing = await runOurListing(repository);
    assert.equal(listing.exitCode, 0, listing.stderr);
  });

  it("reports a missing repository folder and an empty one", async () => {
    await assertUnreadable({ rootPath: join(scratch, "does-not-exist"), passwordFile: original.passwordFile }, "not-found");
    const emptyDir = join(scratch, "empty");
    await mkdir(emptyDir);
    await assertUnreadable({ rootPath: emptyDir, passwordFile: original.passwordFile }, "not-found");
  });

  it("reports a missing password file", async () => {
    const repository = await copyRepository("no-password-file");
    await assertUnreadable({ ...repository, passwordFile: join(scratch, "no-such-password") }, "not-found");
  });

  it("reports truncated index blobs", async () => {
    const repository = await copyRepository("truncated-index");
    for (const path of await filesUnder(repository.rootPath, "xn")) await truncate(path, 40);
    await assertUnreadable(repository, "corrupt");
  });

  it("reports index blobs that disappeared while the packs remain", async () => {
    const repository = await copyRepository("lost-index");
    for (const path of await filesUnder(repository.rootPath, "x")) await rm(path);
    await assertUnreadable(repository, "corrupt");
  });

  it("reports a corrupted pack blob", async () => {
    const repository = await copyRepository("corrupted-pack");
    for (const path of await filesUnder(repository.rootPath, "q")) {
      const bytes = await readFile(path);
      for (let i = 32; i < bytes.length; i++) bytes[i]! ^= 0x5a;
      await writeFile(path, bytes);
    }
    await assertUnreadable(repository, "corrupt");
  });

  it("reports a truncated pack blob", async () => {
    const repository = await copyRepository("truncated-pack");
    for (const path of await filesUnder(repository.rootPath, "q")) await truncate(path, 48);
    await assertUnreadable(repository, "corrupt");
  });

  it("reports a repository whose format version is newer than the reader knows", async () => {
    const repository = await copyRepository("newer-format");
    const formatPath = join(repository.rootPath, "kopia.repository.f");
    const outer = JSON.parse(await readFile(formatPath, "utf8"));
    const envelope = parseFormatEnvelope(await readFile(formatPath));
    const formatKey = await deriveFormatKey(original.password, envelope);
    const config = JSON.parse(decryptConfigJson(envelope, formatKey));
    config.format.version = 4;
    // Seal it again exactly as kopia does, so only the version differs.
    const key = Buffer.from(hkdfSync("sha256", formatKey, envelope.uniqueId, "AES", 32));
    const authData = Buffer.from(hkdfSync("sha256", formatKey, envelope.uniqueId, "CHECKSUM", 32));
    const nonce = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", key, nonce);
    cipher.setAAD(authData);
    const sealed = Buffer.concat([nonce, cipher.update(JSON.stringify(config)), cipher.final(), cipher.getAuthTag()]);
    await writeFile(formatPath, JSON.stringify({ ...outer, encryptedBlockFormat: sealed.toString("base64") }, null, 2) + "\n");
    await assertUnreadable(repository, "unsupported");
  });

  it("retries when a listed blob vanishes before it is read, and fails when it stays missing", async () => {
    const repository = await copyRepository("vanishing");
    const inner = createFilesystemBlobStore({ rootPath: repository.rootPath });
    const phantom = { id: "xn0_0123456789abcdef0123456789abcdef-s0123456789abcdef-c1", lengthBytes: 100 };
    let phantomListings = 1;
    const store: BlobStore = {
      location: inner.location,
      async list(prefix) {
        const listed = await inner.list(prefix);
        if (prefix === "x" && phantomListings > 0) {
          phantomListings--;
          return [...listed, phantom];
        }
        return listed;
      },
      read: (id) => inner.read(id),
      readRange: (id, offset, length) => inner.readRange(id, offset, length),
    };
    const reader = createRepositoryReader({ store, readPassword: async () => original.password });
    const result = await reader.read();
    assert.equal(result.attempts, 2);
    assert.deepEqual(
      result.snapshots.map((s) => s.id).sort(),
      (await createRepositoryReader({ store: inner, readPassword: async () => original.password }).read()).snapshots.map((s) => s.id).sort(),
    );

    phantomListings = Number.POSITIVE_INFINITY;
    const catalog = createCatalog(repository, { store });
    await catalog.start();
    catalog.stop();
    const answer = catalog.lookup(identity, Date.now());
    assert.ok(!answer.readable && answer.reason.includes("not-found"), JSON.stringify(answer));
  });

  it("stops answering once a refresh fails or the last success is older than the freshness bound", async () => {
    const repository = await copyRepository("stale");
    let nowMs = Date.now();
    const catalog = createCatalog(repository, { now: () => nowMs });
    assert.equal(catalog.lookup(identity, nowMs).readable, false, "never loaded");
    await catalog.start();
    catalog.stop();
    assert.ok(catalog.lookup(identity, nowMs).readable);
    assert.ok(catalog.lookup(identity, nowMs + 60_000).readable);
    const stale = catalog.lookup(identity, nowMs + 60_001);
    assert.ok(!stale.readable && stale.reason.includes("stale"));

    await writeFile(repository.passwordFile, "rotated to something wrong");
    assert.equal((await catalog.refresh()).ok, false);
    const failed = catalog.lookup(identity, nowMs);
    assert.ok(!failed.readable && failed.reason.includes("wrong-password"));
    // A wrong password stays wrong: the key it derived is never remembered as a working one.
    assert.equal((await catalog.refresh()).ok, false);
    assert.equal(catalog.lookup(identity, nowMs).readable, false);

    // The password file is read at refresh time: putting it right needs no restart.
    await writeFile(repository.passwordFile, original.password);
    nowMs += 1_000;
    assert.equal((await catalog.refresh()).ok, true);
    assert.ok(catalog.lookup(identity, nowMs).readable);
  });

  it(
    "reports files it may not read, checked as an unprivileged user because root reads mode 000",
    { skip: process.getuid?.() !== 0 ? "needs root to switch to an unprivileged user" : false },
    async () => {
      // Kopia writes 0600 files in 0700 folders. Root ignores those modes, so chmod alone proves
      // nothing here; the listing runs in a child process as nobody instead.
      const repository = await copyRepository("permissions");
      await chmod(join(scratch, "permissions"), 0o755);
      await chmod(scratch, 0o755);
      await chmod(repository.passwordFile, 0o644);
      const script = [
        `import { runSnapshotsCommand } from ${JSON.stringify(new URL("../../../webhook/cli/snapshots.ts", import.meta.url).pathname)};`,
        `let err = "";`,
        `const code = await runSnapshotsCommand(["--repository", ${JSON.stringify(repository.rootPath)}, "--password-file", ${JSON.stringify(repository.passwordFile)}, "--json"], { stdout: (s) => process.stdout.write(s), stderr: (s) => (err += s) });`,
        `process.stderr.write(err); process.exit(code);`,
      ].join("\n");
      const child = spawn(process.execPath, ["--input-type=module", "-e", script], { uid: 65534, gid: 65534, stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d) => (stdout += d));
      child.stderr.on("data", (d) => (stderr += d));
      const exitCode = await new Promise<number | null>((resolve) => child.on("close", resolve));
      assert.equal(exitCode, 1, stderr);
      assert.equal(stdout, "");
      assert.match(stderr, /\(permission-denied\)/);
    },
  );
});
