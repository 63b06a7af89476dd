// End to end through the real kube-apiserver: what a user feels when creating a PVC. A real
// kube-apiserver v1.35.4 + etcd with VolSync's CRDs holds --pvcs labelled, Bound PVCs (created
// first, timed) and, once pvc-guardian's reconciler has run, their generated objects. pvc-guardian
// runs as the image runs it (the bundle from build.mjs, the Dockerfile's CMD, the Deployment's
// NODE_OPTIONS) with the 10,000-snapshot repository of bench/kopia plus one snapshot to restore
// from, and is registered as both webhooks with the shipped configurations (URL clientConfig and a
// test CA, as the scenarios test does).
//
// For each path and client count, the same creates are timed with no webhooks registered (the
// baseline, pvc-guardian still running its loops) and then with both webhooks registered; the
// figure is what the webhooks add. Paths:
//   fresh    a new labelled PVC with no backup (stored: the validator writes the paused RD)
//   restore  a labelled PVC whose backup exists, created with dryRun=All (nothing stored, so the
//            same PVC can be asked about again and again), as the issue's Kyverno comparison did
//
//   ./node_modules/.bin/node bench/kopia/run.ts          # once, builds and caches the repository
//   ./node_modules/.bin/node bench/e2e/run.ts [--pvcs 10000] [--creates 500] [--clients 10] [--env NAME=VALUE]

import { cp, mkdtemp, rm, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { Agent, request as httpsRequest } from "node:https";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";
import { createCertificateAuthority, issueServerCertificate } from "../../certs/pki.ts";
import { startTestCluster, type TestCluster } from "../../test/harness/cluster.ts";
import { installCrds } from "../../test/harness/crds.ts";
import { attachKopiaRepository, binaryCacheDir, findKopiaBinary } from "../../test/harness/kopia.ts";
import { guardianTestEnvironment, registerGuardianWebhooks } from "../../test/harness/guardian-webhooks.ts";
import { buildImageBundle, deploymentNodeOptions, imageCommand, startImageProcess, type ImageProcess } from "../../test/harness/image-process.ts";
import { rssMiB } from "../memory/memory-figures.ts";
import { forEachConcurrently } from "../../webhook/domain/bounded-concurrency.ts";

const { values: args } = parseArgs({
  options: {
    pvcs: { type: "string", default: "10000" },
    creates: { type: "string", default: "500" },
    clients: { type: "string", default: "10" },
    // Bound on the whole set-up (bulk creates, first reconcile), in seconds.
    "setup-timeout": { type: "string", default: "900" },
    // Extra environment for pvc-guardian, NAME=VALUE (repeatable), e.g. glibc's MALLOC_ARENA_MAX.
    env: { type: "string", multiple: true, default: [] },
  },
});
const bulkPvcs = Number(args.pvcs);
const createsPerPhase = Number(args.creates);
const concurrentClients = Number(args.clients);
const setupDeadlineMs = Date.now() + Number(args["setup-timeout"]) * 1000;

const cachedRepository = path.join(binaryCacheDir(), "..", "bench", "kopia-500x20-v0.22.3");
if (!existsSync(path.join(cachedRepository, "complete.json"))) {
  console.error(`no cached repository at ${cachedRepository}; run bench/kopia/run.ts once first`);
  process.exit(1);
}
const kopia = findKopiaBinary();
if (!("path" in kopia)) {
  console.error(kopia.skipReason);
  process.exit(1);
}

const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");
const namespace = "e2e";
const bulkNamespaces = ["bulk-a", "bulk-b", "bulk-c", "bulk-d"];

type Response = { status: number; text: string };

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** `work(0)` … `work(count - 1)`, at most `limit` at a time. */
function inParallel(count: number, limit: number, work: (index: number) => Promise<void>): Promise<void> {
  return forEachConcurrently(
    Array.from({ length: count }, (_, index) => index),
    limit,
    work,
  );
}

/** Anonymous memory (heap, malloc) against file-backed pages (the node binary) in the RSS. */
async function rssSplit(pid: number): Promise<string> {
  const [anon, file] = await Promise.all([rssMiB(pid, "RssAnon"), rssMiB(pid, "RssFile")]);
  return `RssAnon ${anon.toFixed(1)} MiB, RssFile ${file.toFixed(1)} MiB`;
}

/** V8 heap figures from the ops port's default process metrics: live data against what the heap holds. */
async function heapFigures(opsPort: number): Promise<string> {
  const text = await fetch(`http://127.0.0.1:${opsPort}/metrics`).then(
    (response) => response.text(),
    () => "",
  );
  const value = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "m").exec(text)?.[1] ?? Number.NaN) / 1024 / 1024;
  return `heap used ${value("nodejs_heap_size_used_bytes").toFixed(1)} MiB of ${value("nodejs_heap_size_total_bytes").toFixed(1)} MiB, external ${value("nodejs_external_memory_bytes").toFixed(1)} MiB`;
}

const scratch = await mkdtemp(path.join(tmpdir(), "pvc-guardian-bench-e2e-"));
let cluster: TestCluster | undefined;
let guardian: ImageProcess | undefined;
try {
  console.log(`load average before the run: ${load()} on ${availableParallelism()} CPUs; node ${process.version}`);
  const distDir = await buildImageBundle(scratch);
  const command = await imageCommand();
  const nodeOptions = (await deploymentNodeOptions()) ?? "";
  const ca = await createCertificateAuthority(path.join(scratch, "pki"), { commonName: "e2e bench CA" });
  const serving = await issueServerCertificate(ca, path.join(scratch, "pki"), { name: "serving", commonName: "pvc-guardian", ipAddresses: ["127.0.0.1"] });

  // The repository: bench/kopia's 10,000 snapshots, plus one for the PVC the restore path asks about.
  const repoDir = path.join(scratch, "kopia");
  await cp(path.join(cachedRepository, "repository"), path.join(repoDir, "repository"), { recursive: true });
  await writeFile(path.join(repoDir, "password"), "bench-password");
  const repository = attachKopiaRepository({ binaryPath: kopia.path, workDir: repoDir, password: "bench-password" });
  await repository.run([
    "repository",
    "connect",
    "filesystem",
    `--path=${repository.rootPath}`,
    "--override-username=maintenance",
    "--override-hostname=volsync",
  ]);
  const source = await repository.makeSourceDir("restored", { "db.sqlite": "precious" });
  await repository.snapshot(source, { source: `restored-backup@${namespace}:/data` });

  cluster = await startTestCluster();
  const api = cluster;
  await installCrds(api, { certManager: false });
  const agent = new Agent({ keepAlive: true, maxSockets: 64, ca: api.caPem });
  const call = (method: string, apiPath: string, body?: unknown, contentType = "application/json"): Promise<Response> =>
    new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = httpsRequest(
        new URL(apiPath, api.server),
        {
          method,
          agent,
          headers: { authorization: `Bearer ${api.adminToken}`, accept: "application/json", ...(payload ? { "content-type": contentType } : {}) },
          timeout: 30_000,
        },
        (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => (text += chunk));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
        },
      );
      req.on("timeout", () => req.destroy(new Error(`${method} ${apiPath}: timeout`)));
      req.on("error", reject);
      req.end(payload);
    });
  const expect = async (what: string, pending: Promise<Response>, ...statuses: number[]) => {
    const response = await pending;
    if (!statuses.includes(response.status)) throw new Error(`${what}: HTTP ${response.status} ${response.text.slice(0, 300)}`);
    return response;
  };
  for (const name of ["pvc-guardian", "volsync-system", namespace, ...bulkNamespaces]) {
    await expect(`namespace ${name}`, call("POST", "/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name } }), 201);
  }
  await expect(
    "the Kopia credentials Secret",
    call("POST", "/api/v1/namespaces/volsync-system/secrets", {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "kopia-credentials", namespace: "volsync-system" },
      stringData: { KOPIA_PASSWORD: "bench-password", KOPIA_REPOSITORY: "filesystem:///repository" },
    }),
    201,
  );

  const pvc = (ns: string, name: string) => ({
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: { name, namespace: ns, labels: { app: name, backup: "hourly" } },
    spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } },
  });

  // The cluster: --pvcs labelled PVCs across four namespaces, each set Bound as the PV controller would.
  const bulkStartedMs = performance.now();
  await inParallel(bulkPvcs, 16, async (i) => {
    if (Date.now() > setupDeadlineMs) throw new Error(`set-up exceeded --setup-timeout after ${i} PVCs`);
    const ns = bulkNamespaces[i % bulkNamespaces.length]!;
    const name = `data-${String(i).padStart(5, "0")}`;
    const created = await expect(`PVC ${ns}/${name}`, call("POST", `/api/v1/namespaces/${ns}/persistentvolumeclaims`, pvc(ns, name)), 201);
    const object = JSON.parse(created.text) as { status?: object };
    await expect(
      `PVC ${ns}/${name} status`,
      call("PUT", `/api/v1/namespaces/${ns}/persistentvolumeclaims/${name}/status`, {
        ...object,
        status: { phase: "Bound", accessModes: ["ReadWriteOnce"], capacity: { storage: "1Gi" } },
      }),
      200,
    );
  });
  const bulkSeconds = (performance.now() - bulkStartedMs) / 1000;
  console.log(`cluster: ${bulkPvcs} labelled PVCs created and set Bound in ${bulkSeconds.toFixed(1)} s (16 at a time; load ${load()})`);

  // pvc-guardian as the image runs it, against this apiserver through a kubeconfig.
  const policyFile = path.join(scratch, "policy.yaml");
  await writeFile(policyFile, "sweep: { dryRun: true }\n");
  // The server's own time per review (its log line's durationMs), to split the added latency.
  const reviewTimes = { mutate: [] as number[], validate: [] as number[] };
  let reconciled: ((line: Record<string, unknown>) => void) | undefined;
  const firstPass = new Promise<Record<string, unknown>>((resolve) => (reconciled = resolve));
  const guardianStartedMs = performance.now();
  guardian = await startImageProcess({
    appDir: path.dirname(distDir),
    argv: command,
    env: {
      NODE_OPTIONS: nodeOptions,
      ...guardianTestEnvironment({ policyFile, serving, repository, kubeconfigPath: api.kubeconfigPath, podName: "pvc-guardian-e2e" }),
      PVC_GUARDIAN_LOG_LEVEL: "info",
      ...Object.fromEntries(args.env.map((pair) => [pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1)])),
    },
    onLog: (line) => {
      if (line.includes('"msg":"reconcile pass done"')) reconciled?.(JSON.parse(line) as Record<string, unknown>);
      else if (line.includes('"msg":"admission review answered"')) {
        const entry = JSON.parse(line) as { webhook: "mutate" | "validate"; durationMs: number };
        reviewTimes[entry.webhook].push(entry.durationMs);
      }
    },
  });
  const pid = guardian.child.pid!;
  const serveSeconds = (performance.now() - guardianStartedMs) / 1000;
  // Unreferenced: once the pass is done, this timer must not hold the process until the deadline.
  const setupExpired = sleep(Math.max(0, setupDeadlineMs - Date.now()), undefined, { ref: false });
  const report = await Promise.race([firstPass, setupExpired]);
  if (report === undefined) throw new Error("the first reconcile pass did not finish within --setup-timeout");
  const reconcileSeconds = (performance.now() - guardianStartedMs) / 1000;
  const { inventory: _inventory, ...summary } = report as Record<string, unknown>;
  console.log(
    `pvc-guardian: serving after ${serveSeconds.toFixed(1)} s, first reconcile pass done after ${reconcileSeconds.toFixed(1)} s: ${JSON.stringify(summary).slice(0, 400)}`,
  );
  await sleep(5_000);
  const idleMiB = await rssMiB(pid);
  console.log(`pvc-guardian memory after the first pass: ${await rssSplit(pid)}`);
  console.log(`pvc-guardian heap after the first pass (ops port /metrics): ${await heapFigures(guardian.opsPort)}`);
  console.log(
    `pvc-guardian RSS with the cluster reconciled: ${idleMiB.toFixed(1)} MiB (high-water mark so far ${(await rssMiB(pid, "VmHWM")).toFixed(1)} MiB)`,
  );

  // Both shipped webhook configurations, pointed at this process.
  const plurals = ["mutatingwebhookconfigurations", "validatingwebhookconfigurations"] as const;
  const register = () => registerGuardianWebhooks(api, guardian!.port, ca.certPem);
  const unregister = async () => {
    for (const plural of plurals) await expect(`delete ${plural}`, call("DELETE", `/apis/admissionregistration.k8s.io/v1/${plural}/pvc-guardian`), 200, 404);
    await sleep(2_000);
  };

  type PhaseResult = { p50Ms: number; p99Ms: number; maxMs: number; perSecond: number; patched: number; serverMs: string };
  let freshCounter = 0;
  const runPhase = async (pathName: "fresh" | "restore", clients: number, isWebhooked: boolean): Promise<PhaseResult> => {
    const times: number[] = [];
    let patched = 0;
    reviewTimes.mutate.length = 0;
    reviewTimes.validate.length = 0;
    const startedMs = performance.now();
    await inParallel(createsPerPhase, clients, async () => {
      const name = pathName === "restore" ? "restored" : `fresh-${String(freshCounter++).padStart(5, "0")}`;
      const query = pathName === "restore" ? "?dryRun=All" : "";
      const t0 = performance.now();
      const response = await expect(
        `${pathName} create ${name}`,
        call("POST", `/api/v1/namespaces/${namespace}/persistentvolumeclaims${query}`, pvc(namespace, name)),
        201,
      );
      times.push(performance.now() - t0);
      if (response.text.includes('"dataSourceRef"')) patched += 1;
    });
    const seconds = (performance.now() - startedMs) / 1000;
    times.sort((a, b) => a - b);
    if (isWebhooked && pathName === "restore" && patched !== createsPerPhase)
      throw new Error(`restore path: only ${patched} of ${createsPerPhase} creates came back with a dataSourceRef`);
    const server = (webhook: "mutate" | "validate") => {
      const sorted = [...reviewTimes[webhook]].sort((a, b) => a - b);
      return `${webhook} ${percentile(sorted, 50).toFixed(1)} / ${percentile(sorted, 99).toFixed(1)} ms (${sorted.length})`;
    };
    return {
      p50Ms: percentile(times, 50),
      p99Ms: percentile(times, 99),
      maxMs: times.at(-1)!,
      perSecond: createsPerPhase / seconds,
      patched,
      serverMs: `${server("mutate")}, ${server("validate")}`,
    };
  };

  const rows: string[] = [];
  let peakMiB = idleMiB;
  const sampler = setInterval(() => void rssMiB(pid).then((value) => (peakMiB = Math.max(peakMiB, value || 0))), 100);
  for (const pathName of ["restore", "fresh"] as const) {
    for (const clients of [1, concurrentClients]) {
      const before = load();
      const baseline = await runPhase(pathName, clients, false);
      await register();
      const webhooked = await runPhase(pathName, clients, true);
      await unregister();
      const label = `${pathName}${pathName === "restore" ? " (dry run)" : ""}, ${clients === 1 ? "sequential" : `${clients} clients`}`;
      console.log(`\n${label} (${createsPerPhase} creates each; load ${before} → ${load()})`);
      console.log(
        `  no webhooks     p50 ${baseline.p50Ms.toFixed(1)} ms  p99 ${baseline.p99Ms.toFixed(1)} ms  max ${baseline.maxMs.toFixed(1)} ms  ${baseline.perSecond.toFixed(0)} creates/s`,
      );
      console.log(
        `  pvc-guardian    p50 ${webhooked.p50Ms.toFixed(1)} ms  p99 ${webhooked.p99Ms.toFixed(1)} ms  max ${webhooked.maxMs.toFixed(1)} ms  ${webhooked.perSecond.toFixed(0)} creates/s  (${webhooked.patched} with dataSourceRef)`,
      );
      console.log(`  inside pvc-guardian, p50 / p99 per review: ${webhooked.serverMs}`);
      console.log(`  added           p50 ${(webhooked.p50Ms - baseline.p50Ms).toFixed(1)} ms  p99 ${(webhooked.p99Ms - baseline.p99Ms).toFixed(1)} ms`);
      rows.push(
        `| ${label} | ${baseline.p50Ms.toFixed(1)} / ${baseline.p99Ms.toFixed(1)} ms | ${webhooked.p50Ms.toFixed(1)} / ${webhooked.p99Ms.toFixed(1)} ms | +${(webhooked.p50Ms - baseline.p50Ms).toFixed(1)} / +${(webhooked.p99Ms - baseline.p99Ms).toFixed(1)} ms |`,
      );
    }
  }
  clearInterval(sampler);
  const hwmMiB = await rssMiB(pid, "VmHWM");
  console.log(`pvc-guardian heap after the creates: ${await heapFigures(guardian.opsPort)}; ${await rssSplit(pid)}`);
  console.log(
    `\npvc-guardian RSS: ${idleMiB.toFixed(1)} MiB idle with ${bulkPvcs} PVCs reconciled, ${peakMiB.toFixed(1)} MiB peak during the creates, VmHWM ${hwmMiB.toFixed(1)} MiB over the whole run`,
  );
  console.log(`load average after the run: ${load()}`);
  console.log("\n| path | no webhooks p50 / p99 | pvc-guardian p50 / p99 | added p50 / p99 |");
  console.log("|---|---|---|---|");
  for (const row of rows) console.log(row);
  agent.destroy();
} finally {
  await guardian?.stop();
  await cluster?.stop();
  await rm(scratch, { recursive: true, force: true });
}
