// A real S3 server for tests: versitygw (Apache-2.0) over a temporary folder with its posix
// backend, on 127.0.0.1 with a free port, TLS off or on. A bucket is a top-level folder, so tests
// make and delete buckets with mkdir and rm, the way an operator's mistake would.

import { type ChildProcess, spawn } from "node:child_process";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { createServer, connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULT_S3_REQUEST_TIMEOUT_MS } from "../../webhook/config.ts";
import type { BlobStore } from "../../webhook/kopia/blob-store.ts";
import { createS3BlobStore, type S3BlobStoreDeps } from "../../webhook/kopia/s3-blob-store.ts";
import { eventually } from "../support/eventually.ts";
import { requireBinary, requireOrSkip } from "./binaries.ts";

export type VersityGw = {
  /** `127.0.0.1:port`, as kopia's --endpoint and AWS_S3_ENDPOINT take it. */
  endpoint: string;
  port: number;
  accessKey: string;
  secretKey: string;
  useTls: boolean;
  /** The virtual-hosted base domain when started with one (`localhost`). */
  virtualDomain?: string;
  dataDir: string;
  createBucket(name: string): Promise<void>;
  deleteBucket(name: string): Promise<void>;
  /** Stops the server (the data stays) and starts it again on the same port. */
  stop(): Promise<void>;
  start(): Promise<void>;
  dispose(): Promise<void>;
};

export function versityGwSkip(): string | false {
  return requireOrSkip(["versitygw", "kopia"]);
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      if (address === null || typeof address === "string") return reject(new Error("no port"));
      server.close(() => resolve(address.port));
    });
  });
}

async function waitForPort(port: number, child: ChildProcess, log: () => string, timeoutMs = 15_000): Promise<void> {
  await eventually(
    () => `versitygw to listen on 127.0.0.1:${port}: ${log()}`,
    async () => {
      if (child.exitCode !== null) throw new Error(`versitygw exited with ${child.exitCode}: ${log()}`);
      const open = await new Promise<boolean>((resolve) => {
        const socket = connect(port, "127.0.0.1");
        socket.once("connect", () => {
          socket.destroy();
          resolve(true);
        });
        socket.once("error", () => resolve(false));
      });
      return open ? true : undefined;
    },
    { timeoutMs },
  );
}

export async function startVersityGw(
  options: {
    tls?: { certPath: string; keyPath: string };
    virtualDomain?: string;
    /** Serve an existing folder (data/ and sidecar/), kept on dispose: for cached benchmark buckets. */
    workDir?: string;
  } = {},
): Promise<VersityGw> {
  const binary = requireBinary("versitygw");
  const workDir = options.workDir ?? (await mkdtemp(join(tmpdir(), "pvc-guardian-versitygw-")));
  const dataDir = join(workDir, "data");
  const sidecarDir = join(workDir, "sidecar");
  await mkdir(dataDir, { recursive: true });
  await mkdir(sidecarDir, { recursive: true });
  const port = await freePort();
  const accessKey = "pvcguardiantest";
  const secretKey = "pvc-guardian-test-secret-key";
  let child: ChildProcess | undefined;
  let output = "";

  async function start() {
    const args = ["--port", `127.0.0.1:${port}`, "--access", accessKey, "--secret", secretKey, "--region", "us-east-1", "--quiet"];
    if (options.tls) args.push("--cert", options.tls.certPath, "--key", options.tls.keyPath);
    if (options.virtualDomain) args.push("--virtual-domain", options.virtualDomain);
    // The sidecar keeps object metadata in files, so the data folder needs no extended attributes.
    args.push("posix", "--sidecar", sidecarDir, dataDir);
    output = "";
    const started = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"], env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: workDir } });
    started.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
    started.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child = started;
    await waitForPort(port, started, () => output);
  }

  async function stop() {
    const running = child;
    child = undefined;
    if (running === undefined || running.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      running.once("exit", () => resolve());
      running.kill("SIGTERM");
      setTimeout(() => running.kill("SIGKILL"), 5_000).unref();
    });
  }

  await start();
  return {
    endpoint: `127.0.0.1:${port}`,
    port,
    accessKey,
    secretKey,
    useTls: options.tls !== undefined,
    ...(options.virtualDomain ? { virtualDomain: options.virtualDomain } : {}),
    dataDir,
    async createBucket(name) {
      await mkdir(join(dataDir, name));
    },
    async deleteBucket(name) {
      await rm(join(dataDir, name), { recursive: true, force: true });
    },
    stop,
    start,
    async dispose() {
      await stop();
      if (options.workDir === undefined) await rm(workDir, { recursive: true, force: true });
    },
  };
}

/**
 * pvc-guardian's S3 blob store on `bucket`/`prefix` of this server, with its credentials and the
 * configured request timeout; path-style unless `overrides` say otherwise.
 */
export function versityGwStore(server: VersityGw, bucket: string, prefix: string, overrides: Partial<S3BlobStoreDeps> = {}): BlobStore {
  return createS3BlobStore({
    bucket,
    prefix,
    endpoint: server.endpoint,
    useTls: server.useTls,
    region: "us-east-1",
    addressing: "path",
    requestTimeoutMs: DEFAULT_S3_REQUEST_TIMEOUT_MS,
    readCredentials: async () => ({ accessKeyId: server.accessKey, secretAccessKey: server.secretKey }),
    ...overrides,
  });
}
