// A real Kubernetes API server for integration tests: etcd and kube-apiserver on 127.0.0.1 with
// free ports, certificates from certs/pki.ts, a static admin token, and service-account signing
// keys so the server issues real ServiceAccount tokens and serves its JWKS. No controller-manager,
// scheduler or kubelet runs: tests play those parts themselves (for example setting a PVC Bound).

import { spawn, type ChildProcess } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { closeSync, openSync, readFileSync, rmSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { request as httpsRequest } from "node:https";
import { request as httpRequest } from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { KubeConfig } from "@kubernetes/client-node";
import { stringify } from "yaml";
import {
  createCertificateAuthority,
  issueClientCertificate,
  issueServerCertificate,
  type CertificateAuthority,
  type IssuedCertificate,
} from "../../certs/pki.ts";
import { eventually } from "../support/eventually.ts";
import { requireBinary } from "./binaries.ts";

export interface StartTestClusterOptions {
  /** How long to wait for etcd and then the apiserver's /readyz. Default 60 s (30 s is typical cold). */
  readyTimeoutMs?: number;
  /** Extra kube-apiserver flags, `--name=value`; they override the defaults of the same name. */
  apiserverArgs?: readonly string[];
  /** Keep the temp dir (logs, certificates, etcd data) after stop(); also PVC_GUARDIAN_KEEP_CLUSTER=1. */
  keepDir?: boolean;
}

export interface TestCluster {
  /** `https://127.0.0.1:<port>` */
  server: string;
  port: number;
  /** The CA that signed the apiserver's serving certificate and that it trusts for client certificates. */
  caCertPath: string;
  caPem: string;
  certificateAuthority: CertificateAuthority;
  /** A bearer token for user `admin` in group `system:masters`. */
  adminToken: string;
  /** The same admin as a client certificate (CN=admin-cert, O=system:masters). */
  adminClientCertificate: IssuedCertificate;
  /** A kubeconfig file (context `test`) using the admin token. */
  kubeconfigPath: string;
  /** The `iss` of issued ServiceAccount tokens; also their default audience. */
  serviceAccountIssuer: string;
  /** The temp dir holding logs, certificates and etcd data; removed by stop() unless kept. */
  dir: string;
  logPaths: { etcd: string; apiserver: string };
  /** A fresh KubeConfig for @kubernetes/client-node, loaded from kubeconfigPath. */
  kubeConfig(): KubeConfig;
  /** Current process IDs; undefined for a component that is not running. */
  pids(): { etcd: number | undefined; apiserver: number | undefined };
  /** Stops the apiserver (SIGTERM, SIGKILL after a grace period); etcd and its data stay. */
  stopApiserver(): Promise<void>;
  /** Starts the apiserver again on the same port with the same certificates and waits for /readyz. */
  startApiserver(): Promise<void>;
  /** stopApiserver() then startApiserver(). */
  restart(): Promise<void>;
  /** Stops both processes by PID and removes the temp dir. Safe to call twice. */
  stop(): Promise<void>;
}

const serviceAccountIssuer = "https://kubernetes.default.svc.cluster.local";
const stopGraceMs = 5_000;

// Children started by this process, killed on exit even when a test throws or forgets stop().
const liveChildren = new Set<ChildProcess>();
const dirsToRemove = new Set<string>();
let exitHookInstalled = false;

function killChildrenNow(): void {
  for (const child of liveChildren) {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(child.pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
  }
  for (const dir of dirsToRemove) rmSync(dir, { recursive: true, force: true });
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", killChildrenNow);
  // A signal would skip 'exit': kill the children, then let the signal do what it would have done
  // (the once-listener is gone by then, so the default action applies unless others listen).
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(signal, () => {
      killChildrenNow();
      process.kill(process.pid, signal);
    });
  }
}

/** Writes a kubeconfig (context `test`) for `server`, trusting `caPem`, as `user` with its bearer token. */
export async function writeKubeconfig(
  filePath: string,
  cluster: { server: string; caPem: string },
  user: { name: string; token: string; namespace?: string },
): Promise<void> {
  await writeFile(
    filePath,
    stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "test", cluster: { server: cluster.server, "certificate-authority-data": Buffer.from(cluster.caPem).toString("base64") } }],
      users: [{ name: user.name, user: { token: user.token } }],
      contexts: [{ name: "test", context: { cluster: "test", user: user.name, ...(user.namespace === undefined ? {} : { namespace: user.namespace }) } }],
      "current-context": "test",
    }),
    { mode: 0o600 },
  );
}

export async function startTestCluster(options: StartTestClusterOptions = {}): Promise<TestCluster> {
  const etcdBinary = requireBinary("etcd");
  const apiserverBinary = requireBinary("kube-apiserver");
  const readyTimeoutMs = options.readyTimeoutMs ?? 60_000;
  const keepDir = options.keepDir ?? process.env.PVC_GUARDIAN_KEEP_CLUSTER === "1";
  installExitHook();

  const dir = await mkdtemp(path.join(tmpdir(), "pvc-guardian-cluster-"));
  if (!keepDir) dirsToRemove.add(dir);
  const pkiDir = path.join(dir, "pki");
  const logPaths = { etcd: path.join(dir, "etcd.log"), apiserver: path.join(dir, "kube-apiserver.log") };

  let etcd: ChildProcess | undefined;
  let apiserver: ChildProcess | undefined;
  let stopped = false;

  const stopAll = async (): Promise<void> => {
    if (apiserver !== undefined) await stopProcess(apiserver);
    apiserver = undefined;
    if (etcd !== undefined) await stopProcess(etcd);
    etcd = undefined;
  };

  try {
    const ca = await createCertificateAuthority(pkiDir, { commonName: "pvc-guardian test cluster CA" });
    const serving = await issueServerCertificate(ca, pkiDir, {
      name: "apiserver",
      commonName: "kube-apiserver",
      dnsNames: ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"],
      ipAddresses: ["127.0.0.1", "10.0.0.1"],
    });
    const adminClientCertificate = await issueClientCertificate(ca, pkiDir, {
      name: "admin",
      commonName: "admin-cert",
      organizations: ["system:masters"],
    });
    const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const saPublicKeyPath = path.join(pkiDir, "service-account.pub");
    const saPrivateKeyPath = path.join(pkiDir, "service-account.key");
    await writeFile(saPublicKeyPath, publicKey.export({ type: "spki", format: "pem" }));
    await writeFile(saPrivateKeyPath, privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });

    const adminToken = randomBytes(24).toString("hex");
    const tokenFilePath = path.join(pkiDir, "tokens.csv");
    await writeFile(tokenFilePath, `${adminToken},admin,admin-uid,"system:masters"\n`, { mode: 0o600 });

    const ports = await freePorts(3);
    const [etcdClientPort, etcdPeerPort, apiserverPort] = [ports[0]!, ports[1]!, ports[2]!];
    const server = `https://127.0.0.1:${apiserverPort}`;

    const kubeconfigPath = path.join(dir, "kubeconfig");
    await writeKubeconfig(kubeconfigPath, { server, caPem: ca.certPem }, { name: "admin", token: adminToken, namespace: "default" });

    const etcdDataDir = path.join(dir, "etcd-data");
    await mkdir(etcdDataDir, { recursive: true });
    const etcdUrl = `http://127.0.0.1:${etcdClientPort}`;
    const etcdPeerUrl = `http://127.0.0.1:${etcdPeerPort}`;
    etcd = spawnLogged(
      etcdBinary,
      [
        "--name=test",
        `--data-dir=${etcdDataDir}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=${etcdPeerUrl}`,
        `--initial-advertise-peer-urls=${etcdPeerUrl}`,
        `--initial-cluster=test=${etcdPeerUrl}`,
        // A throwaway store: durability buys nothing and fsync dominates on slow disks.
        "--unsafe-no-fsync=true",
        "--log-level=warn",
      ],
      logPaths.etcd,
    );
    await eventually(
      () => describeFailure("etcd to become healthy", etcd, logPaths.etcd),
      async () => ((await httpGetStatus(`${etcdUrl}/health`).catch(() => undefined)) === 200 ? true : undefined),
      { timeoutMs: readyTimeoutMs },
    );

    const apiserverArgs = mergeArgs(
      [
        `--etcd-servers=${etcdUrl}`,
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        `--secure-port=${apiserverPort}`,
        `--cert-dir=${path.join(dir, "apiserver-certs")}`,
        `--tls-cert-file=${serving.certPath}`,
        `--tls-private-key-file=${serving.keyPath}`,
        `--client-ca-file=${ca.certPath}`,
        `--token-auth-file=${tokenFilePath}`,
        `--service-account-issuer=${serviceAccountIssuer}`,
        `--service-account-key-file=${saPublicKeyPath}`,
        `--service-account-signing-key-file=${saPrivateKeyPath}`,
        `--api-audiences=${serviceAccountIssuer}`,
        "--authorization-mode=RBAC",
        // Webhook admission on, as in a real cluster. ServiceAccount admission off: without a
        // controller-manager no namespace ever gets its `default` ServiceAccount, so every Pod
        // create would fail (envtest makes the same choice).
        "--enable-admission-plugins=NamespaceLifecycle,LimitRanger,DefaultStorageClass,StorageObjectInUseProtection,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ValidatingAdmissionPolicy,ResourceQuota",
        "--disable-admission-plugins=ServiceAccount",
        "--service-cluster-ip-range=10.0.0.0/24",
        "--allow-privileged=true",
        "--profiling=false",
        "--v=1",
      ],
      options.apiserverArgs ?? [],
    );

    const caPem = ca.certPem;
    const startApiserverProcess = async (): Promise<void> => {
      if (apiserver !== undefined) throw new Error(`kube-apiserver already running (pid ${apiserver.pid})`);
      const child = spawnLogged(apiserverBinary, apiserverArgs, logPaths.apiserver);
      apiserver = child;
      await eventually(
        () => describeFailure("kube-apiserver to become ready", child, logPaths.apiserver),
        async () => {
          if (child.exitCode !== null || child.signalCode !== null) {
            throw new Error(describeFailure("kube-apiserver exited during start-up", child, logPaths.apiserver));
          }
          return (await httpsGetStatus(`${server}/readyz`, caPem, adminToken).catch(() => undefined)) === 200 ? true : undefined;
        },
        { timeoutMs: readyTimeoutMs },
      );
    };
    const stopApiserverProcess = async (): Promise<void> => {
      if (apiserver === undefined) return;
      await stopProcess(apiserver);
      apiserver = undefined;
    };

    await startApiserverProcess();

    return {
      server,
      port: apiserverPort,
      caCertPath: ca.certPath,
      caPem,
      certificateAuthority: ca,
      adminToken,
      adminClientCertificate,
      kubeconfigPath,
      serviceAccountIssuer,
      dir,
      logPaths,
      kubeConfig() {
        const kc = new KubeConfig();
        kc.loadFromFile(kubeconfigPath);
        return kc;
      },
      pids() {
        return { etcd: etcd?.pid, apiserver: apiserver?.pid };
      },
      stopApiserver: stopApiserverProcess,
      startApiserver: startApiserverProcess,
      async restart() {
        await stopApiserverProcess();
        await startApiserverProcess();
      },
      async stop() {
        if (stopped) return;
        stopped = true;
        await stopAll();
        if (!keepDir) {
          await rm(dir, { recursive: true, force: true });
          dirsToRemove.delete(dir);
        }
      },
    };
  } catch (error) {
    await stopAll();
    // Keep the logs of a cluster that failed to start: the error names them.
    dirsToRemove.delete(dir);
    throw error;
  }
}

function spawnLogged(binary: string, args: readonly string[], logPath: string): ChildProcess {
  const fd = openSync(logPath, "a");
  try {
    const child = spawn(binary, args, {
      stdio: ["ignore", fd, fd],
      // Webhook and etcd traffic stays on loopback; a proxy from the environment must not catch it.
      env: { ...process.env, NO_PROXY: "127.0.0.1,localhost", no_proxy: "127.0.0.1,localhost" },
    });
    liveChildren.add(child);
    child.once("exit", () => liveChildren.delete(child));
    // Spawn errors (ENOENT, EACCES) surface through the readiness wait and the log path.
    child.once("error", () => liveChildren.delete(child));
    return child;
  } finally {
    closeSync(fd);
  }
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  // The grace timer must not keep the test process alive once the child has gone.
  const graceTimer = new AbortController();
  const graceful = await Promise.race([exited.then(() => true), sleep(stopGraceMs, false, { signal: graceTimer.signal }).catch(() => false)]);
  graceTimer.abort();
  if (!graceful) {
    child.kill("SIGKILL");
    await exited;
  }
}

function mergeArgs(defaults: readonly string[], overrides: readonly string[]): string[] {
  const flagName = (arg: string): string => arg.split("=", 1)[0] ?? arg;
  const overridden = new Set(overrides.map(flagName));
  return [...defaults.filter((arg) => !overridden.has(flagName(arg))), ...overrides];
}

async function freePorts(count: number): Promise<number[]> {
  // Hold all listeners open together so the kernel cannot hand out the same port twice.
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<import("node:net").Server>((resolve, reject) => {
          const s = createServer();
          s.once("error", reject);
          s.listen(0, "127.0.0.1", () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => {
    const address = s.address();
    if (address === null || typeof address === "string") throw new Error("no port assigned");
    return address.port;
  });
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  return ports;
}

function describeFailure(what: string, child: ChildProcess | undefined, logPath: string): string {
  const status =
    child === undefined
      ? "not started"
      : child.exitCode !== null
        ? `exit code ${child.exitCode}`
        : child.signalCode !== null
          ? `signal ${child.signalCode}`
          : `pid ${child.pid} still running`;
  let tail = "";
  try {
    tail = readFileSync(logPath, "utf8").split("\n").slice(-25).join("\n");
  } catch {
    tail = "(log unreadable)";
  }
  return `${what} (${status}); log: ${logPath}\n--- last lines ---\n${tail}`;
}

function httpGetStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

function httpsGetStatus(url: string, caPem: string, token: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ca: caPem, headers: { authorization: `Bearer ${token}` }, timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}
