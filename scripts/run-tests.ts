// `npm test` after type-checking: unit tests, then (building the real binaries first when CI=true
// or PVC_GUARDIAN_BUILD=1) the integration tests one file at a time, since each suite starts its
// own kube-apiserver and etcd. Exits non-zero when any part fails.
// Usage: node scripts/run-tests.ts [test files...]   (files given: only those, one at a time)

import { spawn } from "node:child_process";
import { globSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { binaryPath, binaryVersions, findBinary, isCi, type BinaryName } from "../test/harness/binaries.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
// A hung test file must not hold CI until its global timeout; the slowest suite takes about a minute.
const perTestTimeoutMs = 10 * 60 * 1000;
const realBinaries: readonly BinaryName[] = ["kube-apiserver", "etcd", "kopia"];
// One integration file at a time by default: each starts its own apiserver and etcd, and timing-
// sensitive suites (leases, sweeps) should not compete for two cores. Raise it on bigger machines.
const integrationConcurrency = Number.parseInt(process.env.PVC_GUARDIAN_TEST_CONCURRENCY ?? "1", 10) || 1;

function run(command: string, args: readonly string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: root, stdio: "inherit" });
    child.once("error", (error) => {
      console.error(`[run-tests] ${command}: ${error.message}`);
      resolve(127);
    });
    child.once("exit", (code, signal) => resolve(code ?? (signal === null ? 1 : 128)));
  });
}

function testFiles(pattern: string): string[] {
  return globSync(pattern, { cwd: root }).sort();
}

function missingBinaries(): BinaryName[] {
  return realBinaries.filter((name) => findBinary(name) === undefined);
}

function banner(lines: readonly string[]): void {
  const width = Math.max(...lines.map((l) => l.length)) + 4;
  const rule = "!".repeat(width);
  console.error(["", rule, ...lines.map((l) => `! ${l.padEnd(width - 4)} !`), rule, ""].join("\n"));
}

async function runNodeTests(label: string, files: readonly string[], extraArgs: readonly string[]): Promise<number> {
  if (files.length === 0) {
    console.error(`[run-tests] no ${label} test files`);
    return 0;
  }
  console.error(`[run-tests] ${label}: ${files.length} file(s)`);
  return run(process.execPath, ["--test", `--test-timeout=${perTestTimeoutMs}`, ...extraArgs, ...files]);
}

async function main(): Promise<number> {
  const requested = process.argv.slice(2);
  if (requested.length > 0) return runNodeTests("requested", requested, ["--test-concurrency=1"]);

  const unitStatus = await runNodeTests("unit", testFiles("test/unit/**/*.test.ts"), []);

  const mayBuild = isCi() || process.env.PVC_GUARDIAN_BUILD === "1";
  if (missingBinaries().length > 0 && mayBuild) {
    console.error(`[run-tests] building missing binaries: ${missingBinaries().join(", ")}`);
    const buildStatus = await run("bash", [path.join(root, "test/harness/build-binaries.sh"), "all"]);
    if (buildStatus !== 0) {
      console.error(`[run-tests] test/harness/build-binaries.sh failed with exit code ${buildStatus}`);
      return buildStatus;
    }
  }

  const missing = missingBinaries();
  if (missing.length > 0) {
    // Under CI the suites themselves fail on a missing binary (requireOrSkip throws).
    banner([
      isCi() ? "CI=true BUT REAL BINARIES ARE MISSING: INTEGRATION TESTS WILL FAIL" : "INTEGRATION TESTS NEEDING THESE BINARIES ARE SKIPPED",
      ...missing.map((name) => `missing ${name} ${binaryVersions[name]}: ${binaryPath(name)}`),
      "build them: test/harness/build-binaries.sh all   (Go toolchain; ~20 min cold)",
      "or run: PVC_GUARDIAN_BUILD=1 npm test",
    ]);
  }

  const integrationStatus = await runNodeTests("integration", testFiles("test/integration/**/*.test.ts"), [`--test-concurrency=${integrationConcurrency}`]);
  if (missing.length > 0) {
    banner([`REMINDER: integration tests ran without ${missing.join(", ")}; suites needing them were skipped`]);
  }
  return unitStatus !== 0 ? unitStatus : integrationStatus;
}

process.exitCode = await main();
