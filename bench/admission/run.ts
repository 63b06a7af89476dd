// Admission benchmark: the real server (main.ts's composition, in a child process) against a bare
// Hono HTTPS server answering a fixed AdmissionReview (the transport floor, in another child), with
// the same keep-alive TLS load from autocannon on loopback. Prints throughput, latency and peak RSS
// for both, the throughput ratio, and latency at a fixed 1,000 requests/s.
//
//   ./node_modules/.bin/node bench/admission/run.ts [--duration 10] [--connections 10] [--rate 1000] [--cpu-prof-dir DIR]

import { build } from "esbuild";
import { createRequire } from "node:module";
import { fork, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { createCertificateAuthority, issueServerCertificate } from "../../certs/pki.ts";
import { postJson } from "../../test/support/https-call.ts";
import { rssMiB } from "../memory/memory-figures.ts";
import { pvcCreateReview } from "./reviews.ts";

// autocannon ships no type declarations; this is the part of its API used here.
type AutocannonResult = { requests: { total: number }; latency: { p99: number }; non2xx: number; errors: number; timeouts: number };
type AutocannonInstance = Promise<AutocannonResult> & {
  on(event: "response", listener: (client: unknown, statusCode: number, resBytes: number, responseTimeMs: number) => void): void;
};
const autocannon = createRequire(import.meta.url)("autocannon") as (options: Record<string, unknown>) => AutocannonInstance;

const { values: args } = parseArgs({
  options: {
    duration: { type: "string", default: "10" },
    connections: { type: "string", default: "10" },
    rate: { type: "string", default: "1000" },
    warmup: { type: "string", default: "3" },
    // Writes a V8 CPU profile of each server child to this directory.
    "cpu-prof-dir": { type: "string" },
    // V8 flags for every server child alike, e.g. "--max-semi-space-size=2" (as the image sets).
    "node-flags": { type: "string", default: "" },
  },
});
const durationSeconds = Number(args.duration);
const connections = Number(args.connections);
const fixedRate = Number(args.rate);
const warmupSeconds = Number(args.warmup);

type Server = { name: string; child: ChildProcess; port: number };
type LoadResult = {
  cpuMsPerRequest: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  autocannonP99Ms: number;
  non2xx: number;
  errors: number;
  total: number;
};

const here = path.dirname(new URL(import.meta.url).pathname);

/**
 * Bundles the children the way build.mjs bundles the server for its image, so memory and start-up
 * are measured as deployed rather than with Node stripping TypeScript at load time.
 */
async function bundleChildren(outdir: string): Promise<void> {
  await build({
    entryPoints: ["guardian-child.ts", "transport-child.ts", "bare-child.ts", "listener-child.ts"].map((name) => path.join(here, name)),
    outdir,
    outExtension: { ".js": ".mjs" },
    bundle: true,
    platform: "node",
    target: "node24",
    format: "esm",
    minifySyntax: true,
    banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
    logLevel: "warning",
  });
}

async function startChild(name: string, script: string, env: Record<string, string>): Promise<Server> {
  const child = fork(script, [], {
    env: { ...process.env, ...env },
    // Logs go to a pipe this process drains, as a container runtime reads a pod's stdout.
    stdio: ["ignore", "pipe", "inherit", "ipc"],
    execArgv: [
      ...(args["node-flags"] ? args["node-flags"].split(/\s+/).filter(Boolean) : []),
      ...(args["cpu-prof-dir"] !== undefined ? ["--cpu-prof", `--cpu-prof-dir=${args["cpu-prof-dir"]}`] : []),
    ],
  });
  child.stdout!.resume();
  const port = await new Promise<number>((resolve, reject) => {
    child.once("message", (message) => resolve((message as { port: number }).port));
    child.once("exit", (code) => reject(new Error(`${name} exited with ${code} before listening`)));
  });
  return { name, child, port };
}

async function stopChild(server: Server): Promise<void> {
  const exited = new Promise<void>((resolve) => server.child.once("exit", () => resolve()));
  server.child.send("stop");
  const timer = setTimeout(() => server.child.kill("SIGKILL"), 15_000);
  await exited;
  clearTimeout(timer);
}

/** One real request with full certificate verification against the test CA, to show what is measured. */
async function verifiedPost(ca: string, port: number, pathName: string, body: string): Promise<string> {
  return (await postJson(ca, port, pathName, body)).text;
}

/**
 * CPU time the process has used (user + system), in ms. On a shared, busy machine wall-clock
 * throughput swings with the neighbours; CPU per request does not, and for a single-threaded
 * server its inverse is the capacity of one dedicated core.
 */
async function cpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  // Fields after the parenthesised command name; utime and stime are the 14th and 15th overall.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicksPerSecond;
}
// Linux's USER_HZ is 100 on every architecture Node supports.
const clockTicksPerSecond = 100;

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

async function load(
  pid: number,
  port: number,
  bodies: { mutate: string; validate: string },
  options: { seconds: number; overallRate?: number },
): Promise<LoadResult> {
  const headers = { "content-type": "application/json" };
  // autocannon's histogram has 1 ms resolution; collect sub-millisecond times from its events.
  let times = new Float64Array(1 << 16);
  let count = 0;
  const instance = autocannon({
    url: `https://127.0.0.1:${port}`,
    connections,
    pipelining: 1,
    duration: options.seconds,
    ...(options.overallRate !== undefined ? { overallRate: options.overallRate } : {}),
    requests: [
      { method: "POST", path: "/mutate-v1-pvc", headers, body: bodies.mutate },
      { method: "POST", path: "/validate-v1-pvc", headers, body: bodies.validate },
    ],
  });
  instance.on("response", (_client: unknown, _status: number, _bytes: number, responseTimeMs: number) => {
    if (count === times.length) {
      const grown = new Float64Array(times.length * 2);
      grown.set(times);
      times = grown;
    }
    times[count++] = responseTimeMs;
  });
  const cpuBeforeMs = await cpuMs(pid);
  const result = await instance;
  const cpuUsedMs = (await cpuMs(pid)) - cpuBeforeMs;
  const sorted = times.slice(0, count).sort();
  return {
    cpuMsPerRequest: cpuUsedMs / Math.max(1, result.requests.total),
    requestsPerSecond: result.requests.total / options.seconds,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    autocannonP99Ms: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    total: result.requests.total,
  };
}

async function measure(server: Server, ca: string, bodies: { mutate: string; validate: string }) {
  const idleRssMiB = await rssMiB(server.child.pid ?? 0, "VmRSS");
  const mutateAnswer = JSON.parse(await verifiedPost(ca, server.port, "/mutate-v1-pvc", bodies.mutate)) as {
    response: { allowed: boolean; status?: { message: string } };
  };
  const validateAnswer = JSON.parse(await verifiedPost(ca, server.port, "/validate-v1-pvc", bodies.validate)) as {
    response: { allowed: boolean; status?: { message: string } };
  };
  console.log(`\n${server.name} (pid ${server.child.pid}, port ${server.port})`);
  console.log(
    `  mutate answers allowed=${mutateAnswer.response.allowed}; validate answers allowed=${validateAnswer.response.allowed}${validateAnswer.response.status ? ` (${validateAnswer.response.status.message.slice(0, 90)}…)` : ""}`,
  );
  const pid = server.child.pid ?? 0;
  await load(pid, server.port, bodies, { seconds: warmupSeconds });
  const saturated = await load(pid, server.port, bodies, { seconds: durationSeconds });
  const paced = await load(pid, server.port, bodies, { seconds: durationSeconds, overallRate: fixedRate });
  const peakRssMiB = await rssMiB(server.child.pid ?? 0, "VmHWM");
  const line = (label: string, r: LoadResult) =>
    `  ${label.padEnd(20)} ${r.requestsPerSecond.toFixed(0).padStart(7)} req/s  p50 ${r.p50Ms.toFixed(2)} ms  p99 ${r.p99Ms.toFixed(2)} ms (autocannon p99 ${r.autocannonP99Ms} ms)  CPU ${(r.cpuMsPerRequest * 1000).toFixed(0)} µs/req  non-2xx ${r.non2xx}  errors ${r.errors}`;
  console.log(line(`${connections} connections`, saturated));
  console.log(line(`${fixedRate} req/s fixed`, paced));
  console.log(`  RSS                  ${idleRssMiB.toFixed(1)} MiB after start, ${peakRssMiB.toFixed(1)} MiB peak (VmHWM)`);
  return { saturated, paced, rssMiB: peakRssMiB };
}

const scratch = await mkdtemp(path.join(tmpdir(), "pvc-guardian-bench-"));
try {
  const ca = await createCertificateAuthority(path.join(scratch, "ca"), { commonName: "pvc-guardian bench CA" });
  const tls = await issueServerCertificate(ca, path.join(scratch, "tls"), { commonName: "pvc-guardian", ipAddresses: ["127.0.0.1"], dnsNames: ["localhost"] });
  const bodies = {
    mutate: JSON.stringify(pvcCreateReview("5c0f3a5e-0000-4000-8000-000000000001")),
    validate: JSON.stringify(pvcCreateReview("5c0f3a5e-0000-4000-8000-000000000002")),
  };
  console.log(
    `load average before the run: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")} on ${availableParallelism()} CPUs`,
  );
  console.log(
    `node ${process.version}, ${durationSeconds}s per phase, ${connections} keep-alive TLS connections, review body ${Buffer.byteLength(bodies.mutate)} bytes`,
  );

  const bundleDir = path.join(scratch, "bundle");
  await bundleChildren(bundleDir);
  /** Starts one bundled child, measures it and stops it. */
  const measureChild = async (name: string, script: string, env: Record<string, string>) => {
    const server = await startChild(name, path.join(bundleDir, script), env);
    const result = await measure(server, ca.certPem, bodies);
    await stopChild(server);
    return result;
  };
  const benchTls = { BENCH_TLS_CERT_FILE: tls.certPath, BENCH_TLS_KEY_FILE: tls.keyPath };
  const bareResult = await measureChild("bare Hono HTTPS (fixed AdmissionReview)", "bare-child.mjs", benchTls);
  const listenerResult = await measureChild("bare answer through pvc-guardian's listener (startHttpsListener)", "listener-child.mjs", benchTls);
  const transportResult = await measureChild("transport only (createGuardianServer, fixed-answer handlers)", "transport-child.mjs", benchTls);
  const guardianResult = await measureChild("pvc-guardian (main.ts composition, no repository configured)", "guardian-child.mjs", {
    PVC_GUARDIAN_TLS_CERT_FILE: tls.certPath,
    PVC_GUARDIAN_TLS_KEY_FILE: tls.keyPath,
    PVC_GUARDIAN_LISTEN_HOST: "127.0.0.1",
    PVC_GUARDIAN_PORT: "0",
    PVC_GUARDIAN_KUBERNETES: "off",
    PVC_GUARDIAN_LOG_LEVEL: "info",
  });

  const ratio = guardianResult.saturated.requestsPerSecond / bareResult.saturated.requestsPerSecond;
  const cpuRatio = bareResult.saturated.cpuMsPerRequest / guardianResult.saturated.cpuMsPerRequest;
  const transportRatio = transportResult.saturated.requestsPerSecond / bareResult.saturated.requestsPerSecond;
  const transportCpuRatio = bareResult.saturated.cpuMsPerRequest / transportResult.saturated.cpuMsPerRequest;
  console.log("\nsummary");
  console.log(`  throughput ratio     ${(ratio * 100).toFixed(1)}% of bare by req/s, ${(cpuRatio * 100).toFixed(1)}% by CPU per request (target >= 70%)`);
  console.log(
    `  listener only        ${((listenerResult.saturated.requestsPerSecond / bareResult.saturated.requestsPerSecond) * 100).toFixed(1)}% of bare by req/s, ${((bareResult.saturated.cpuMsPerRequest / listenerResult.saturated.cpuMsPerRequest) * 100).toFixed(1)}% by CPU per request`,
  );
  console.log(
    `  transport only       ${(transportRatio * 100).toFixed(1)}% of bare by req/s, ${(transportCpuRatio * 100).toFixed(1)}% by CPU per request, p99 at ${fixedRate} req/s ${transportResult.paced.p99Ms.toFixed(2)} ms, peak RSS ${transportResult.rssMiB.toFixed(1)} MiB`,
  );
  console.log(`  p99 at ${fixedRate} req/s    ${guardianResult.paced.p99Ms.toFixed(2)} ms (target <= 5 ms)`);
  console.log(`  peak RSS             ${guardianResult.rssMiB.toFixed(1)} MiB (target <= 100 MiB)`);
} finally {
  await rm(scratch, { recursive: true, force: true });
}
