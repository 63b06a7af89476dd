// Memory as the image runs it: the bundle built by build.mjs, started with the Dockerfile's CMD and
// the Deployment's NODE_OPTIONS, holding a 10,000-snapshot Kopia catalog (bench/kopia's cached
// repository, 500 sources × 20 snapshots, built by the real kopia binary). For each variant: RSS
// once started and settled (idle), then the peak while autocannon sends AdmissionReviews (mutate
// and validate alternating, keep-alive TLS), against the Deployment's memory limit. The variants
// run one after the other in the same run: the image's command line, the same with source maps
// switched the other way, and a Node process doing nothing (the floor).
//
//   ./node_modules/.bin/node bench/kopia/run.ts        # once, builds and caches the repository
//   ./node_modules/.bin/node bench/memory/run.ts [--load-seconds 10] [--settle-seconds 5] [--connections 10] [--node-options "..."]

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { createCertificateAuthority, issueServerCertificate } from "../../certs/pki.ts";
import { binaryCacheDir } from "../../test/harness/kopia.ts";
import { pvcCreateReview } from "../admission/reviews.ts";
import { buildImageBundle, deploymentNodeOptions, imageCommand, startImageProcess } from "../../test/harness/image-process.ts";
import { deploymentMemory, mebibytesOf, rssMiB } from "./memory-figures.ts";

type AutocannonResult = { requests: { total: number }; non2xx: number; errors: number; timeouts: number };
const autocannon = createRequire(import.meta.url)("autocannon") as (options: Record<string, unknown>) => Promise<AutocannonResult>;

const { values: args } = parseArgs({
  options: {
    "load-seconds": { type: "string", default: "10" },
    "settle-seconds": { type: "string", default: "5" },
    connections: { type: "string", default: "10" },
    // Instead of the Deployment's NODE_OPTIONS, to try other heap settings.
    "node-options": { type: "string" },
  },
});
const loadSeconds = Number(args["load-seconds"]);
const settleMs = Number(args["settle-seconds"]) * 1000;
const connections = Number(args.connections);

const repositoryDir = path.join(binaryCacheDir(), "..", "bench", "kopia-500x20-v0.22.3", "repository");
if (!existsSync(repositoryDir)) {
  console.error(`no cached repository at ${repositoryDir}; run bench/kopia/run.ts once first`);
  process.exit(1);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const scratch = await mkdtemp(path.join(tmpdir(), "pvc-guardian-bench-memory-"));
try {
  console.log(
    `load average before the run: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")} on ${availableParallelism()} CPUs`,
  );
  const distDir = await buildImageBundle(scratch);
  const appDir = path.dirname(distDir);
  const bundleBytes = (await stat(path.join(distDir, "pvc-guardian.mjs"))).size;
  const command = await imageCommand();
  const nodeOptions = args["node-options"] ?? (await deploymentNodeOptions()) ?? "";
  const memory = await deploymentMemory();
  const limitMiB = memory.limit ? mebibytesOf(memory.limit) : Number.NaN;
  console.log(`node ${process.version}; bundle ${(bundleBytes / 1024 / 1024).toFixed(2)} MiB`);
  console.log(`image command: node ${command.join(" ")}; NODE_OPTIONS=${nodeOptions}; Deployment memory request ${memory.request}, limit ${memory.limit}`);

  const ca = await createCertificateAuthority(path.join(scratch, "ca"), { commonName: "memory bench CA" });
  const tls = await issueServerCertificate(ca, path.join(scratch, "tls"), { commonName: "pvc-guardian", ipAddresses: ["127.0.0.1"], dnsNames: ["localhost"] });
  const passwordFile = path.join(scratch, "password");
  await writeFile(passwordFile, "bench-password");
  const env = {
    NODE_OPTIONS: nodeOptions,
    PVC_GUARDIAN_TLS_CERT_FILE: tls.certPath,
    PVC_GUARDIAN_TLS_KEY_FILE: tls.keyPath,
    PVC_GUARDIAN_LISTEN_HOST: "127.0.0.1",
    PVC_GUARDIAN_PORT: "0",
    PVC_GUARDIAN_OPS_PORT: "0",
    PVC_GUARDIAN_REPOSITORY_PATH: repositoryDir,
    PVC_GUARDIAN_PASSWORD_FILE: passwordFile,
    PVC_GUARDIAN_KUBERNETES: "off",
    PVC_GUARDIAN_LOG_LEVEL: "info",
  };
  const bodies = [
    JSON.stringify(pvcCreateReview("5c0f3a5e-0000-4000-8000-000000000001")),
    JSON.stringify(pvcCreateReview("5c0f3a5e-0000-4000-8000-000000000002")),
  ];

  const hasSourceMaps = command.includes("--enable-source-maps");
  const variants: { name: string; argv: string[] }[] = [
    { name: `image command (${hasSourceMaps ? "with" : "without"} --enable-source-maps)`, argv: command },
    {
      name: hasSourceMaps ? "image command without --enable-source-maps" : "image command + --enable-source-maps (NODE_OPTIONS when debugging)",
      argv: hasSourceMaps ? command.filter((flag) => flag !== "--enable-source-maps") : ["--enable-source-maps", ...command],
    },
  ];

  // The floor: a Node process with the same heap flags that does nothing.
  const floor = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60_000)"], { env: { NODE_OPTIONS: nodeOptions }, stdio: "ignore" });
  await sleep(1_000);
  const floorMiB = await rssMiB(floor.pid!);
  floor.kill();

  const rows: string[] = [];
  for (const variant of variants) {
    let snapshots = "";
    let logLines = 0;
    const server = await startImageProcess({
      appDir,
      argv: variant.argv,
      env,
      onLog: (line) => {
        logLines += 1;
        const match = /"snapshots":(\d+)/.exec(line);
        if (match) snapshots = match[1]!;
      },
    });
    const pid = server.child.pid!;
    const startPeakMiB = await rssMiB(pid, "VmHWM");
    await sleep(settleMs);
    const idleMiB = await rssMiB(pid);
    let sampledPeakMiB = idleMiB;
    const sampler = setInterval(() => void rssMiB(pid).then((value) => (sampledPeakMiB = Math.max(sampledPeakMiB, value || 0))), 100);
    const result = await autocannon({
      url: `https://127.0.0.1:${server.port}`,
      connections,
      duration: loadSeconds,
      requests: bodies.map((body, i) => ({
        method: "POST",
        path: i === 0 ? "/mutate-v1-pvc" : "/validate-v1-pvc",
        headers: { "content-type": "application/json" },
        body,
      })),
    });
    clearInterval(sampler);
    const afterLoadMiB = await rssMiB(pid);
    const hwmMiB = await rssMiB(pid, "VmHWM");
    await server.stop();
    const peakMiB = Math.max(sampledPeakMiB, afterLoadMiB);
    console.log(`\n${variant.name}`);
    console.log(`  node ${variant.argv.join(" ")}`);
    console.log(`  catalog snapshots loaded: ${snapshots || "see log"}; log lines: ${logLines}`);
    console.log(`  RSS at "serving" (start-up high-water mark) ${startPeakMiB.toFixed(1)} MiB`);
    console.log(`  idle RSS after ${settleMs / 1000} s          ${idleMiB.toFixed(1)} MiB`);
    console.log(
      `  peak RSS under load            ${peakMiB.toFixed(1)} MiB (${(result.requests.total / loadSeconds).toFixed(0)} req/s, ${connections} connections, non-2xx ${result.non2xx}, errors ${result.errors + result.timeouts})`,
    );
    console.log(`  VmHWM over the whole run       ${hwmMiB.toFixed(1)} MiB; headroom under the ${memory.limit} limit ${(limitMiB / hwmMiB).toFixed(2)}×`);
    rows.push(`| ${variant.name} | ${idleMiB.toFixed(1)} MiB | ${peakMiB.toFixed(1)} MiB | ${hwmMiB.toFixed(1)} MiB | ${(limitMiB / hwmMiB).toFixed(2)}× |`);
  }
  console.log(`\nNode floor (node -e, NODE_OPTIONS=${nodeOptions}): ${floorMiB.toFixed(1)} MiB`);
  console.log(
    `load average after the run: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}`,
  );
  console.log("\n| variant | idle RSS | peak RSS under load | VmHWM (whole run) | headroom under limit |");
  console.log("|---|---|---|---|---|");
  for (const row of rows) console.log(row);
  console.log("| targets | ≤ 80 MiB | ≤ 100 MiB | | ≥ 2× |");
} finally {
  await rm(scratch, { recursive: true, force: true });
}
