// Admission under attack: the production bundle (dist/pvc-guardian.mjs, built by build.mjs as the
// Dockerfile builds it) run as the image runs it (`dist/pvc-guardian.mjs serve` with the
// Deployment's NODE_OPTIONS heap settings), no repository and no Kubernetes, on
// loopback. A normal validate review is sent every 50 ms on a keep-alive connection while each
// attack runs; the script prints that review's p50/p99, its failures, and the server's peak RSS
// during each attack. Every loop is bounded in count and time.
//
//   ./node_modules/.bin/node bench/admission/attack.ts [--phase-seconds 10]

import { mkdtemp, rm } from "node:fs/promises";
import { Agent, request } from "node:https";
import { connect as netConnect } from "node:net";
import { loadavg, tmpdir } from "node:os";
import path from "node:path";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { parseArgs } from "node:util";
import { createCertificateAuthority, issueServerCertificate } from "../../certs/pki.ts";
import { buildImageBundle, deploymentNodeOptions, startImageProcess } from "../../test/harness/image-process.ts";
import { rssMiB } from "../memory/memory-figures.ts";
import { pvcCreateReview } from "./reviews.ts";

const { values: args } = parseArgs({ options: { "phase-seconds": { type: "string", default: "10" } } });
const phaseMs = Number(args["phase-seconds"]) * 1000;
const mib = 1024 * 1024;

const workDir = await mkdtemp(path.join(tmpdir(), "pvc-guardian-attack-"));
const distDir = await buildImageBundle(workDir);
const ca = await createCertificateAuthority(path.join(workDir, "ca"), { commonName: "attack bench CA" });
const serving = await issueServerCertificate(ca, path.join(workDir, "tls"), {
  commonName: "pvc-guardian",
  dnsNames: ["localhost"],
  ipAddresses: ["127.0.0.1"],
});
const nodeOptions = (await deploymentNodeOptions()) ?? "";

const guardian = await startImageProcess({
  appDir: path.dirname(distDir),
  argv: [path.join(distDir, "pvc-guardian.mjs"), "serve"],
  env: {
    NODE_OPTIONS: nodeOptions,
    PVC_GUARDIAN_TLS_CERT_FILE: serving.certPath,
    PVC_GUARDIAN_TLS_KEY_FILE: serving.keyPath,
    PVC_GUARDIAN_LISTEN_HOST: "127.0.0.1",
    PVC_GUARDIAN_PORT: "0",
    PVC_GUARDIAN_OPS_PORT: "0",
    PVC_GUARDIAN_KUBERNETES: "off",
    PVC_GUARDIAN_LOG_LEVEL: "info",
  },
  startTimeoutMs: 30_000,
});
const { child, port } = guardian;
let exitedWith: string | undefined;
child.once("exit", (code, signal) => (exitedWith = `exit ${code ?? signal}`));

const caPem = ca.certPem;
const normalBody = JSON.stringify(pvcCreateReview("normal"));
const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: caPem });

function post(body: string | Buffer, options: { agent?: Agent | false; isChunked?: boolean; timeoutMs?: number } = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { "content-type": "application/json" };
    if (!options.isChunked) headers["content-length"] = Buffer.byteLength(body);
    const req = request(
      {
        host: "127.0.0.1",
        port,
        path: "/validate-v1-pvc",
        method: "POST",
        ca: caPem,
        agent: options.agent ?? false,
        headers,
        timeout: options.timeoutMs ?? 15_000,
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    if (options.isChunked) {
      const bytes = Buffer.from(body);
      for (let offset = 0; offset < bytes.length; offset += 256 * 1024) req.write(bytes.subarray(offset, offset + 256 * 1024));
      req.end();
    } else req.end(body);
  });
}

type PhaseResult = { name: string; p50Ms: number; p99Ms: number; maxMs: number; normalOk: number; normalFailed: number; peakRssMiB: number; note: string };

/** Runs `attack` (which must finish by itself within its own bounds) while the normal loop and the RSS sampler run. */
async function phase(name: string, attack: () => Promise<string>): Promise<PhaseResult> {
  const latencies: number[] = [];
  let failed = 0;
  let peak = await rssMiB(child.pid!);
  let running = true;
  const sampler = setInterval(() => void rssMiB(child.pid!).then((value) => (peak = Math.max(peak, value || 0))), 100);
  const normalLoop = (async () => {
    // At most one review per 50 ms, for as long as the attack runs (bounded by it).
    while (running) {
      const startedMs = performance.now();
      try {
        const status = await post(normalBody, { agent, timeoutMs: 15_000 });
        if (status === 200) latencies.push(performance.now() - startedMs);
        else failed += 1;
      } catch {
        failed += 1;
      }
      const elapsed = performance.now() - startedMs;
      if (elapsed < 50) await new Promise((resolve) => setTimeout(resolve, 50 - elapsed));
    }
  })();
  const note = await attack().catch((error: Error) => `attack error: ${error.message}`);
  running = false;
  await normalLoop;
  clearInterval(sampler);
  peak = Math.max(peak, await rssMiB(child.pid!));
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? Number.NaN;
  return {
    name,
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    maxMs: latencies.at(-1) ?? Number.NaN,
    normalOk: latencies.length,
    normalFailed: failed,
    peakRssMiB: peak,
    note,
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function openTls(): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: "127.0.0.1", port, ca: caPem, servername: "localhost" }, () => resolve(socket));
    socket.once("error", reject);
  });
}

/** Resolves with how long the server kept `socket` open, or `capMs` (then destroys it). */
function heldFor(socket: TLSSocket | ReturnType<typeof netConnect>, capMs: number): Promise<number> {
  const startedMs = performance.now();
  socket.resume();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(capMs);
    }, capMs);
    socket.once("close", () => {
      clearTimeout(timer);
      resolve(performance.now() - startedMs);
    });
  });
}

const summarise = (values: number[]) =>
  values.length === 0 ? "none" : `${(Math.min(...values) / 1000).toFixed(1)}–${(Math.max(...values) / 1000).toFixed(1)} s`;

const results: PhaseResult[] = [];
results.push(await phase("baseline (no attack)", async () => (await sleep(phaseMs), "")));

results.push(
  await phase("nested arrays: 5× 2.8 MB (1.4M deep) + 5× 4.77 MiB", async () => {
    const deep = "[".repeat(1_400_000) + "]".repeat(1_400_000);
    const huge = "[".repeat(2_500_000) + "]".repeat(2_500_000);
    const statuses: string[] = [];
    const deadline = Date.now() + phaseMs;
    for (let i = 0; i < 5 && Date.now() < deadline; i += 1) {
      statuses.push(String(await post(deep).catch((e: NodeJS.ErrnoException) => e.code ?? e.message)));
      statuses.push(String(await post(huge, { isChunked: i % 2 === 1 }).catch((e: NodeJS.ErrnoException) => e.code ?? e.message)));
    }
    await sleep(Math.max(0, deadline - Date.now()));
    return `answers: ${[...new Set(statuses)].join(", ")}`;
  }),
);

results.push(
  await phase("30 stalled bodies of 3 MiB - 1 KiB", async () => {
    const declared = 3 * mib - 1024;
    const sockets = await Promise.all(Array.from({ length: 30 }, () => openTls().catch(() => undefined)));
    const held: Promise<number>[] = [];
    let refused = 0;
    for (const socket of sockets) {
      if (socket === undefined) continue;
      socket.on("error", () => {});
      let answer = "";
      socket.on("data", (chunk: Buffer) => {
        if (answer.length < 4_000) answer += chunk.toString("latin1");
      });
      socket.write(`POST /validate-v1-pvc HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${declared}\r\n\r\n`);
      socket.write(Buffer.alloc(declared - 1024, 0x20));
      held.push(
        heldFor(socket, phaseMs + 5_000).then((ms) => {
          if (/"code":429/.test(answer)) refused += 1;
          return ms;
        }),
      );
    }
    const times = await Promise.all(held);
    // A refused body's connection is closed right after the 429, often before this client has
    // read it (its own write then fails), so count the quick closes too.
    const quick = times.filter((ms) => ms < 1_000).length;
    return `${sockets.filter(Boolean).length} sent; ${quick} closed within 1 s (over the 16 MiB body budget; ${refused} 429s read); the rest held ${summarise(times.filter((ms) => ms >= 1_000))}`;
  }),
);

// Built before the phase: building them in this process would delay the normal loop's own timing.
const withLabels = (count: number) => {
  const review = pvcCreateReview("labels") as { request: { object: { metadata: { labels: Record<string, string> } } } };
  for (let i = 0; i < count; i += 1) review.request.object.metadata.labels[`l${i}`] = "v";
  return JSON.stringify(review);
};
const hugeLabels = withLabels(530_000);
const largeLabels = withLabels(200_000);
results.push(
  await phase("labels: 5× 530k-label PVC + 5× 200k-label PVC (under the body limit)", async () => {
    const huge = hugeLabels;
    const large = largeLabels;
    const statuses: string[] = [];
    const deadline = Date.now() + phaseMs;
    for (let i = 0; i < 5 && Date.now() < deadline; i += 1) {
      statuses.push(String(await post(huge).catch((e: NodeJS.ErrnoException) => e.code ?? e.message)));
      statuses.push(String(await post(large).catch((e: NodeJS.ErrnoException) => e.code ?? e.message)));
    }
    await sleep(Math.max(0, deadline - Date.now()));
    return `bodies ${(Buffer.byteLength(huge) / mib).toFixed(2)} MiB and ${(Buffer.byteLength(large) / mib).toFixed(2)} MiB; answers: ${[...new Set(statuses)].join(", ")}`;
  }),
);

results.push(
  await phase("50 slow-header connections (1 byte / 200 ms)", async () => {
    const sockets = (await Promise.all(Array.from({ length: 50 }, () => openTls().catch(() => undefined)))).filter((s): s is TLSSocket => s !== undefined);
    const trickle = setInterval(() => {
      for (const socket of sockets) if (!socket.destroyed) socket.write("x");
    }, 200);
    for (const socket of sockets) {
      socket.on("error", () => {});
      socket.write("POST /validate-v1-pvc HTTP/1.1\r\nHost: localhost\r\nX-Slow: ");
    }
    const times = await Promise.all(sockets.map((socket) => heldFor(socket, phaseMs + 5_000)));
    clearInterval(trickle);
    return `${sockets.length} connections held ${summarise(times)}`;
  }),
);

results.push(
  await phase("connection flood: up to 1,000 TCP + TLS connections held idle", async () => {
    const deadline = Date.now() + phaseMs;
    const sockets: (TLSSocket | ReturnType<typeof netConnect>)[] = [];
    const held: Promise<number>[] = [];
    const capMs = phaseMs + 5_000;
    let tlsOpened = 0;
    let refused = 0;
    // Half bare TCP (never starting TLS), half finished TLS handshakes, in batches of 50.
    while (sockets.length < 1_000 && Date.now() < deadline) {
      const batch = await Promise.all(
        Array.from({ length: 50 }, (_, i) => {
          if (i % 2 === 0) {
            const socket = netConnect({ host: "127.0.0.1", port });
            socket.on("error", () => {});
            held.push(heldFor(socket, capMs));
            return Promise.resolve(socket);
          }
          return openTls().then(
            (socket) => {
              tlsOpened += 1;
              socket.on("error", () => {});
              held.push(heldFor(socket, capMs));
              return socket;
            },
            () => {
              refused += 1;
              return undefined;
            },
          );
        }),
      );
      for (const socket of batch) if (socket !== undefined) sockets.push(socket);
    }
    const times = await Promise.all(held);
    return `${sockets.length} opened (${tlsOpened} TLS, ${refused} TLS refused at the cap); held ${summarise(times)}`;
  }),
);

const aliveAfter = exitedWith === undefined;
agent.destroy();
await guardian.stop();
await rm(workDir, { recursive: true, force: true });

console.log(
  `load average before/after: ${loadavg()
    .map((v) => v.toFixed(2))
    .join(" ")} on ${(await import("node:os")).availableParallelism()} CPUs`,
);
console.log(`node ${process.version}, bundle run as: node dist/pvc-guardian.mjs serve, NODE_OPTIONS=${nodeOptions}`);
console.log(`normal review: POST /validate-v1-pvc (${Buffer.byteLength(normalBody)} bytes) every 50 ms on one keep-alive TLS connection\n`);
console.log("| attack | normal p50 | normal p99 | normal max | normal ok/failed | peak RSS | what the attack got |");
console.log("|---|---|---|---|---|---|---|");
for (const r of results) {
  console.log(
    `| ${r.name} | ${r.p50Ms.toFixed(1)} ms | ${r.p99Ms.toFixed(1)} ms | ${r.maxMs.toFixed(1)} ms | ${r.normalOk}/${r.normalFailed} | ${r.peakRssMiB.toFixed(0)} MiB | ${r.note} |`,
  );
}
console.log(`\nserver still running after every attack: ${aliveAfter ? "yes" : `no (${exitedWith})`}`);
