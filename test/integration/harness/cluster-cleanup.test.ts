import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { requireOrSkip } from "../../harness/binaries.ts";
import { eventually } from "../../support/eventually.ts";
import { isProcessRunning } from "../../support/process-running.ts";

const childScript = path.join(path.dirname(fileURLToPath(import.meta.url)), "abandoned-cluster.ts");

/** SIGKILL is asynchronous: the parent has exited, the kernel may still be tearing the child down. */
function goneSoon(pid: number, name: string): Promise<true> {
  return eventually(`${name} pid ${pid} to be gone`, () => (isProcessRunning(pid) ? undefined : true), { timeoutMs: 5_000 });
}

type ChildReport = { etcd: number; apiserver: number; dir: string };

/** Runs a test process that starts a cluster and ends without stop(); returns what it started. */
function runAbandoningProcess(ending: "throw" | "sigterm"): Promise<{ report: ChildReport; code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [childScript, ending], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.once("error", reject);
    child.once("exit", (code, signal) => {
      const line = stdout.split("\n").find((l) => l.startsWith("{"));
      if (line === undefined) return reject(new Error(`child reported nothing (code ${code}, signal ${signal}): ${stderr}`));
      resolve({ report: JSON.parse(line) as ChildReport, code, signal });
    });
  });
}

describe("cluster clean-up when a test process ends without stop()", { skip: requireOrSkip(["etcd", "kube-apiserver"]) }, () => {
  it("kills etcd and the apiserver and removes the temp dir when the test throws", async () => {
    const { report, code } = await runAbandoningProcess("throw");
    assert.equal(code, 1);
    await goneSoon(report.etcd, "etcd");
    await goneSoon(report.apiserver, "kube-apiserver");
    assert.equal(existsSync(report.dir), false);
  });

  it("kills etcd and the apiserver when the test process gets SIGTERM", async () => {
    const { report, signal } = await runAbandoningProcess("sigterm");
    assert.equal(signal, "SIGTERM");
    await goneSoon(report.etcd, "etcd");
    await goneSoon(report.apiserver, "kube-apiserver");
    assert.equal(existsSync(report.dir), false);
  });
});
