// The production bundle started as the image starts it, for the bundle test and the memory,
// end-to-end and attack benchmarks: build.mjs builds dist/ in a scratch copy (as the Dockerfile's
// `npm run build` does) and dist/ is moved away from the sources and node_modules (the image has
// neither); the Dockerfile's CMD gives the node flags and arguments, the Deployment's NODE_OPTIONS
// the heap settings. Both are read from the files themselves, so tests and benchmarks follow what
// ships.

import { execFile, spawn, type ChildProcess } from "node:child_process";
import { copyFile, mkdir, readFile, rename, symlink } from "node:fs/promises";
import path from "node:path";
import { projectRoot } from "./crds.ts";

/** The Dockerfile's CMD (exec form; the distroless entrypoint is node itself). */
export async function imageCommand(): Promise<string[]> {
  const dockerfile = await readFile(path.join(projectRoot(), "Dockerfile"), "utf8");
  const match = /^CMD\s+(\[.*\])\s*$/m.exec(dockerfile);
  if (!match) throw new Error("the Dockerfile has no exec-form CMD");
  return JSON.parse(match[1]!) as string[];
}

/** The Deployment's NODE_OPTIONS value; undefined when it sets none. */
export async function deploymentNodeOptions(): Promise<string | undefined> {
  const deployment = await readFile(path.join(projectRoot(), "manifests", "deployment.yaml"), "utf8");
  return /- name: NODE_OPTIONS\s+value: "?([^"\n]*)"?/.exec(deployment)?.[1]?.trim();
}

function run(command: string, argv: string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) =>
    execFile(command, argv, { cwd, maxBuffer: 8 * 1024 * 1024 }, (error, _out, stderr) =>
      error ? reject(new Error(`${command} ${argv.join(" ")} failed: ${stderr || error.message}`)) : resolve(),
    ),
  );
}

/**
 * Builds dist/ with build.mjs in `<workDir>/build` (sources and node_modules linked) and moves it
 * to `<workDir>/app/dist`, as the Dockerfile copies it. Returns that dist directory; its parent is
 * the image's WORKDIR.
 */
export async function buildImageBundle(workDir: string): Promise<string> {
  const buildDir = path.join(workDir, "build");
  await mkdir(buildDir, { recursive: true });
  for (const file of ["build.mjs", "package.json"]) await copyFile(path.join(projectRoot(), file), path.join(buildDir, file));
  for (const dir of ["webhook", "node_modules"]) await symlink(path.join(projectRoot(), dir), path.join(buildDir, dir));
  await run(process.execPath, ["build.mjs"], buildDir);
  const appDir = path.join(workDir, "app");
  await mkdir(appDir, { recursive: true });
  await rename(path.join(buildDir, "dist"), path.join(appDir, "dist"));
  return path.join(appDir, "dist");
}

export type ImageProcess = {
  child: ChildProcess;
  port: number;
  opsPort: number;
  stderr: () => string;
  isRunning: () => boolean;
  /** The exit code, once the process exits (null when a signal ended it). */
  exited: Promise<number | null>;
  /** SIGTERM, as the kubelet stops the pod (SIGKILL after the Deployment's 30 s grace period); resolves with the exit code. */
  stop(): Promise<number | null>;
};

/**
 * Starts `node <argv>` in `appDir` (the image's WORKDIR, holding dist/) with `env` only (plus
 * PATH), and resolves once it logs "pvc-guardian serving". Log lines go to `onLog` (or nowhere).
 * A process that does not start in time is killed.
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
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
    if (stderr.length > 1e6) stderr = stderr.slice(-1e5);
  });
  const isRunning = () => child.exitCode === null && child.signalCode === null;
  const stop = async (): Promise<number | null> => {
    if (!isRunning()) return exited;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    const code = await exited;
    clearTimeout(timer);
    return code;
  };
  const ports = await new Promise<{ port: number; opsPort: number }>((resolve, reject) => {
    let buffered = "";
    let isStarted = false;
    const timer = setTimeout(
      () => reject(new Error(`the bundle did not start within ${options.startTimeoutMs ?? 60_000} ms:\n${stderr}`)),
      options.startTimeoutMs ?? 60_000,
    );
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
  }).catch(async (error: unknown) => {
    await stop();
    throw error;
  });
  return { child, ...ports, stderr: () => stderr, isRunning, exited, stop };
}
