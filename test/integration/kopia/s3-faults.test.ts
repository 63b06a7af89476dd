// Faults between pvc-guardian and a real S3 server: wrong keys, a deleted bucket, a stopped
// server, and a loopback proxy that delays, cuts, throttles, truncates a listing or shortens a
// ranged body. Every one must leave the catalog unreadable, so the decision is `unknown` with a
// reason naming the cause; none may become "no snapshots" (`fresh`).

import assert from "node:assert/strict";
import { rename } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { decideRestore } from "../../../webhook/domain/restore-decision.ts";
import { createS3BlobStore } from "../../../webhook/kopia/s3-blob-store.ts";
import type { S3Credentials } from "../../../webhook/kopia/s3-request-signer.ts";
import { type KopiaCatalog, createKopiaCatalog } from "../../../webhook/kopia/snapshot-catalog.ts";
import { requireBinary } from "../../harness/binaries.ts";
import { createKopiaS3Repository } from "../../harness/kopia.ts";
import { type S3FaultProxy, startS3FaultProxy } from "../../harness/s3-fault-proxy.ts";
import { type VersityGw, startVersityGw, versityGwSkip } from "../../harness/versitygw.ts";

const identity = "app@default:/data";

describe("S3 faults end unknown, never fresh", { skip: versityGwSkip() }, () => {
  let server: VersityGw;
  let proxy: S3FaultProxy;
  let repository: Awaited<ReturnType<typeof createKopiaS3Repository>>;
  let credentials: S3Credentials;
  const cleanups: (() => Promise<void>)[] = [];

  before(async () => {
    server = await startVersityGw();
    cleanups.push(() => server.dispose());
    await server.createBucket("faults");
    repository = await createKopiaS3Repository({
      binaryPath: requireBinary("kopia"),
      location: { bucket: "faults", prefix: "app/", endpoint: server.endpoint, accessKey: server.accessKey, secretKey: server.secretKey, useTls: false },
    });
    cleanups.push(() => repository.dispose());
    const dir = await repository.makeSourceDir("data", { "a.txt": "a" });
    await repository.snapshot(dir, { source: identity });
    proxy = await startS3FaultProxy({ host: "127.0.0.1", port: server.port });
    cleanups.push(() => proxy.close());
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  /** A catalog through the proxy that has read the repository once, so a failure is a change. */
  async function loadedCatalog(options: { endpoint?: string; requestTimeoutMs?: number } = {}): Promise<KopiaCatalog> {
    credentials = { accessKeyId: server.accessKey, secretAccessKey: server.secretKey };
    const catalog = createKopiaCatalog({
      repositoryPath: repository.rootPath,
      passwordFile: repository.passwordFile,
      refreshIntervalMs: 3_600_000,
      freshnessBoundMs: 600_000,
      missRefreshTimeoutMs: 5_000,
      store: createS3BlobStore({
        bucket: "faults",
        prefix: "app/",
        endpoint: options.endpoint ?? proxy.endpoint,
        useTls: false,
        region: "us-east-1",
        addressing: "path",
        readCredentials: async () => credentials,
        requestTimeoutMs: options.requestTimeoutMs ?? 2_000,
      }),
    });
    proxy.setFault({ kind: "none" });
    const first = await catalog.refresh();
    assert.ok(first.ok, JSON.stringify(first));
    const answer = decideRestore(identity, catalog.lookup(identity, Date.now()));
    assert.equal(answer.answer, "restore");
    return catalog;
  }

  async function assertUnknown(catalog: KopiaCatalog, cause: RegExp) {
    const outcome = await catalog.refresh();
    assert.equal(outcome.ok, false);
    const decision = decideRestore(identity, catalog.lookup(identity, Date.now()));
    assert.equal(decision.answer, "unknown", JSON.stringify(decision));
    assert.match((decision as { reason: string }).reason, cause);
    // A name nobody backed up is not "fresh" either while the repository is unreadable.
    assert.equal(decideRestore("nobody@nowhere:/data", catalog.lookup("nobody@nowhere:/data", Date.now())).answer, "unknown");
    proxy.setFault({ kind: "none" });
  }

  it("wrong keys: S3 refused the request (403)", async () => {
    const catalog = await loadedCatalog();
    credentials = { accessKeyId: server.accessKey, secretAccessKey: "not-the-secret" };
    await assertUnknown(catalog, /permission-denied: .*S3 refused the request \(403/);
  });

  it("a response slower than the request deadline", async () => {
    const catalog = await loadedCatalog({ requestTimeoutMs: 300 });
    proxy.setFault({ kind: "delay", delayMs: 2_000 });
    await assertUnknown(catalog, /did not answer within 300 ms/);
  });

  it("a body cut midway", async () => {
    const catalog = await loadedCatalog();
    proxy.setFault({ kind: "cut-body" });
    await assertUnknown(catalog, /closed the connection mid-request|response was cut/);
  });

  it("throttling (503 SlowDown) that does not stop", async () => {
    const catalog = await loadedCatalog();
    proxy.setFault({ kind: "throttle" });
    await assertUnknown(catalog, /S3 is throttling requests \(503 SlowDown/);
  });

  it("a truncated listing page without a continuation token", async () => {
    const catalog = await loadedCatalog();
    proxy.setFault({ kind: "truncated-listing-without-token" });
    await assertUnknown(catalog, /truncated but gives no continuation token/);
  });

  it("a ranged body shorter than the range", async () => {
    const catalog = await loadedCatalog();
    // Only new manifest contents are read by range: add a snapshot so the refresh must read one.
    const dir = await repository.makeSourceDir("more", { "b.txt": "b" });
    await repository.snapshot(dir, { source: identity });
    proxy.setFault({ kind: "short-range-body" });
    await assertUnknown(catalog, /corrupt: .*is truncated: wanted \d+ bytes/);
  });

  it("the bucket deleted", async () => {
    const catalog = await loadedCatalog({ endpoint: server.endpoint });
    // Moved away rather than removed, so the repository comes back for the next test.
    await rename(join(server.dataDir, "faults"), join(server.dataDir, "..", "faults-away"));
    try {
      await assertUnknown(catalog, /the bucket faults does not exist/);
    } finally {
      await rename(join(server.dataDir, "..", "faults-away"), join(server.dataDir, "faults"));
    }
  });

  it("the server stopped", async () => {
    const catalog = await loadedCatalog({ endpoint: server.endpoint });
    await server.stop();
    try {
      await assertUnknown(catalog, /refused the connection/);
    } finally {
      await server.start();
    }
  });
});
