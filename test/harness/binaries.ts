// Where the real component binaries live: built by test/harness/build-binaries.sh into a cache
// outside the checkout, one file per name and version (`kube-apiserver-v1.35.4`), so fresh clones
// and CI runs on the same machine reuse them.

import { accessSync, constants } from "node:fs";
import { homedir } from "node:os";
import path from "node:path";

export type BinaryName = "kube-apiserver" | "etcd" | "kopia" | "kustomize" | "versitygw";

/** The versions build-binaries.sh builds by default; the same environment variables override both. */
export const binaryVersions: Readonly<Record<BinaryName, string>> = {
  "kube-apiserver": process.env.KUBERNETES_VERSION ?? "v1.35.4",
  etcd: process.env.ETCD_VERSION ?? "v3.6.5",
  kopia: (process.env.KOPIA_VERSIONS ?? "v0.22.3").split(/\s+/).filter(Boolean)[0] ?? "v0.22.3",
  kustomize: process.env.KUSTOMIZE_VERSION ?? "v5.8.2",
  versitygw: process.env.VERSITYGW_VERSION ?? "v1.8.0",
};

/** `$PVC_GUARDIAN_CACHE`, or `~/.cache/pvc-guardian`. */
export function cacheDir(): string {
  return process.env.PVC_GUARDIAN_CACHE ?? path.join(homedir(), ".cache", "pvc-guardian");
}

export function binDir(): string {
  return path.join(cacheDir(), "bin");
}

/** The cache path for a binary, whether or not it exists yet. */
export function binaryPath(name: BinaryName, version: string = binaryVersions[name]): string {
  return path.join(binDir(), `${name}-${version}`);
}

/** The cached binary's path when it exists and is executable. */
export function findBinary(name: BinaryName, version: string = binaryVersions[name]): string | undefined {
  const file = binaryPath(name, version);
  try {
    accessSync(file, constants.X_OK);
    return file;
  } catch {
    return undefined;
  }
}

/** The cached binary's path, or an error that says how to build it. */
export function requireBinary(name: BinaryName, version: string = binaryVersions[name]): string {
  const file = findBinary(name, version);
  if (file === undefined) {
    throw new Error(`${name} ${version} is not built: expected ${binaryPath(name, version)}; ${buildHint(name)}`);
  }
  return file;
}

/** CI as every CI system spells it: set and not "false" or "0" (`CI=1` included). */
export function isCi(): boolean {
  const value = (process.env.CI ?? "").trim().toLowerCase();
  return value !== "" && value !== "false" && value !== "0";
}

/**
 * For `describe(name, { skip: requireOrSkip([...]) }, ...)`: false when every binary is cached,
 * otherwise a reason to skip. Under CI a missing binary is a failure, never a skip, so this throws.
 */
export function requireOrSkip(names: readonly (BinaryName | { name: BinaryName; version: string })[]): string | false {
  const wanted = names.map((entry) => (typeof entry === "string" ? { name: entry, version: binaryVersions[entry] } : entry));
  const missing = wanted.filter(({ name, version }) => findBinary(name, version) === undefined);
  if (missing.length === 0) return false;
  const reason =
    `missing real binaries: ${missing.map(({ name, version }) => `${name} ${version} (${binaryPath(name, version)})`).join(", ")}; ` +
    `build them with: test/harness/build-binaries.sh all (needs the Go toolchain; ~20 minutes cold)`;
  if (isCi()) throw new Error(`CI is set (CI=${process.env.CI}) and ${reason}`);
  // Loud, so a green local run that skipped the real parts is never mistaken for a full one.
  process.stderr.write(`\n*** SKIPPING tests that need real binaries: ${reason} ***\n\n`);
  return reason;
}

function buildHint(name: BinaryName): string {
  return `build it with: test/harness/build-binaries.sh ${name}`;
}
