// The production bundle started as the image starts it, for the memory and end-to-end benchmarks:
// build.mjs builds dist/ in a scratch copy (as the Dockerfile's `npm run build` does), the
// Dockerfile's CMD gives the node flags and arguments, the Deployment's NODE_OPTIONS the heap
// settings. Both are read from the files themselves, so the benchmark follows what ships.

import { execFile, spawn, type ChildProcess } from "node:child_process";
import { copyFile, mkdir, readFile, symlink } from "node:fs/promises";
import path from "node:path";

export const projectRoot = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..", "..");

/** The Dockerfile's CMD (exec form; the distroless entrypoint is node itself). */
export async function imageCommand(): Promise<string[]> {
  const dockerfile = await readFile(path.join(projectRoot, "Dockerfile"), "utf8");
  const match = /^CMD\s+(\[.*\])\s*$/m.exec(dockerfile);
  if (!match) throw new Error("the Dockerfile has no exec-form CMD");
  return JSON.parse(match[1]!) as string[];
}

/** The Deployment's NODE_OPTIONS value. */
export async function deploymentNodeOptions(): Promise<string> {
  const deployment = await readFile(path.join(projectRoot, "manifests", "deployment.yaml"), "utf8");
  const match = /- name: NODE_OPTIONS\s+value: "?([^"\n]*)"?/.exec(deployment);
  return match?.[1]?.trim() ?? "";
}

/** The Deployment's container memory request and limit, as written (e.g. "128Mi"). */
export async function deploymentMemory(): Promise<{ request?: string; limit?: string }> {
  const deployment = await readFile(path.join(projectRoot, "manifests", "deployment.yaml"), "utf8");
  const requests = /requests:\s*\n(?:\s+\w+: \S+\n)*?\s+memory: (\S+)/.exec(deployment)?.[1];
  const limits = /limits:\s*\n(?:\s+\w+: \S+\n)*?\s+memory: (\S+)/.exec(deployment)?.[1];
  return { ...(requests ? { request: requests } : {}), ...(limits ? { limit: limits } : {}) };
}

export function mebibytesOf(quantity: string): number {
  const match = /^(\d+(?:\.\d+)?)(Mi|Gi|M|G)?$/.exec(quantity);
  if (!match) return Number.NaN;
  const value = Number(match[1]);
  switch (match[2]) {
    case "Gi":
      return value * 1024;
    case "G":
      return (value * 1e9) / 1024 / 1024;
    case "M":
      return (value * 1e6) / 1024 / 1024;
    case "Mi":
      return value;
    default:
      return value / 1024 / 1024;
  }
}

function run(command: string, argv: string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) =>
    execFile(command, argv, { cwd }, (error, _out, stderr) => (error ? reject(new Error(stderr || error.message)) : resolve())),
  );
}

/** Builds dist/ with build.mjs in `workDir` (sources and node_modules linked). Returns the dist directory. */
export async function buildImageBundle(workDir: string): Promise<string> {
  const buildDir = path.join(workDir, "build");
  await mkdir(buildDir, { recursive: true });
  for (const file of ["build.mjs", "package.json"]) await copyFile(path.join(projectRoot, file), path.join(buildDir, file));
  for (const dir of ["webhook", "node_modules"]) await symlink(path.join(projectRoot, dir), path.join(buildDir, dir));
  await run(process.execPath, ["build.mjs"], buildDir);
  return path.join(buildDir, "dist");
}

export type ImageProcess = { child: ChildProcess; port: number; opsPort: number; stderr: () => string; stop(): Promise<void> };

/**
 * Starts `node <argv>` in `appDir` (the image's WORKDIR, holding dist/) with `env` only (plus
 * PATH), and resolves once it logs "pvc-guardian serving". Log lines go to `onLog` (or nowhere).
 */
export async function startImageProcess(options: {
  appDir: string;
  argv: string[];
  env: Record<string, string>;
  startTimeoutMs?: number;
  onLog?: (line: string) => void;
}): Promise<ImageProcess> {
  const child = spawn(process.execPath, options.argv, {
    cwd: options.appDir,
    env: { PATH: process.env.PATH ?? "", ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
    if (stderr.length > 1e6) stderr = stderr.slice(-1e5);
  });
  const ports = await new Promise<{ port: number; opsPort: number }>((resolve, reject) => {
    let buffered = "";
    let isStarted = false;
    const timer = setTimeout(() => reject(new Error(`the bundle did not start:\n${stderr}`)), options.startTimeoutMs ?? 60_000);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      if (!isStarted) reject(new Error(`the bundle exited (${code ?? signal}) before serving:\n${stderr}`));
    });
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      buffered += chunk;
      let newline: number;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        options.onLog?.(line);
        if (!isStarted && line.includes('"msg":"pvc-guardian serving"')) {
          const parsed = JSON.parse(line) as { port: number; opsPort: number };
          isStarted = true;
          clearTimeout(timer);
          resolve({ port: parsed.port, opsPort: parsed.opsPort });
        }
      }
    });
  });
  return {
    child,
    ...ports,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** VmRSS (current), VmHWM (the kernel's high-water mark) or a part of VmRSS of a process, in MiB. */
export async function rssMiB(pid: number, field: "VmRSS" | "VmHWM" | "RssAnon" | "RssFile" = "VmRSS"): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, "m").exec(status);
  return match ? Number(match[1]) / 1024 : Number.NaN;
}
