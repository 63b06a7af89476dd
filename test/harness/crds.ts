// The real CustomResourceDefinitions our objects must pass: VolSync's (the perfectra1n fork with
// the Kopia mover), the CSI snapshot and volume-populator CRDs, and cert-manager's, installed into
// a test cluster so every generated object goes through the published OpenAPI schemas.

import { execFile } from "node:child_process";
import { copyFile, mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import type { KubernetesObject } from "@kubernetes/client-node";
import { eventually } from "../support/eventually.ts";
import { cacheDir, isCi } from "./binaries.ts";
import { requestJson, testFieldManager, type ClusterAccess } from "./kube-objects.ts";

export type VolSyncCrdVersion = "v0.17.11" | "v0.17.7";

export const defaultVolSyncCrdVersion: VolSyncCrdVersion = "v0.17.11";
export const certManagerVersion = "v1.21.2";
const certManagerModule = "github.com/cert-manager/cert-manager";

export interface InstallCrdsOptions {
  volSyncVersion?: VolSyncCrdVersion;
  /** Install cert-manager's CRDs too (default true); they come through the Go module proxy. */
  certManager?: boolean;
  establishedTimeoutMs?: number;
}

export interface InstalledCrds {
  /** CRD names (`replicationsources.volsync.backube`, ...) that are Established and served. */
  names: string[];
  /** Why cert-manager's CRDs are absent, when they are (never under CI: there it throws). */
  certManagerSkipReason: string | undefined;
}

/** The checkout's root: test/harness/ is two levels below it. */
export function projectRoot(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
}

/** The team's shared fixtures and spec: `../shared` beside the checkout, or $PVC_GUARDIAN_SHARED. */
export function sharedDir(): string {
  return process.env.PVC_GUARDIAN_SHARED ?? path.resolve(projectRoot(), "..", "shared");
}

export async function volSyncCrdFiles(version: VolSyncCrdVersion = defaultVolSyncCrdVersion): Promise<string[]> {
  return yamlFilesIn(path.join(sharedDir(), "fixtures", "crds", `volsync-perfectra1n-${version}`));
}

/** VolumeSnapshot, VolumeSnapshotContent, VolumeSnapshotClass and VolumePopulator. */
export async function snapshotCrdFiles(): Promise<string[]> {
  return yamlFilesIn(path.join(sharedDir(), "fixtures", "crds", "snapshot"));
}

/**
 * cert-manager's CRDs, cached under `<cache>/crds/cert-manager-<version>/`. On a cold cache they
 * come from the Go module proxy (`go mod download`): the module's deploy/crds/ holds the plain
 * controller-gen output whose `spec` equals the Helm chart's CRD templates without the templating.
 */
export async function certManagerCrdFiles(version: string = certManagerVersion): Promise<string[]> {
  const target = path.join(cacheDir(), "crds", `cert-manager-${version}`);
  if (!existsSync(path.join(target, "SOURCE"))) {
    await mkdir(cacheDir(), { recursive: true });
    const moduleDir = await goModDownload(certManagerModule, version);
    const source = path.join(moduleDir, "deploy", "crds");
    const staging = `${target}.partial-${process.pid}`;
    await rm(staging, { recursive: true, force: true });
    await mkdir(staging, { recursive: true });
    for (const file of await yamlFilesIn(source)) await copyFile(file, path.join(staging, path.basename(file)));
    await writeFile(path.join(staging, "SOURCE"), `${certManagerModule}@${version} deploy/crds/ via go mod download\n`);
    await rm(target, { recursive: true, force: true });
    await mkdir(path.dirname(target), { recursive: true });
    await rename(staging, target);
  }
  return yamlFilesIn(target);
}

/** Installs the CRDs and waits until each is Established and its resource is in discovery. */
export async function installCrds(cluster: ClusterAccess, options: InstallCrdsOptions = {}): Promise<InstalledCrds> {
  const files = [...(await volSyncCrdFiles(options.volSyncVersion)), ...(await snapshotCrdFiles())];
  let certManagerSkipReason: string | undefined;
  if (options.certManager ?? true) {
    try {
      files.push(...(await certManagerCrdFiles()));
    } catch (error) {
      const reason = `cert-manager CRDs unavailable: ${(error as Error).message}`;
      if (isCi()) throw new Error(`CI=true and ${reason}`);
      certManagerSkipReason = reason;
    }
  }
  const crds: KubernetesObject[] = [];
  for (const file of files) crds.push(...(await readCrds(file)));
  await Promise.all(crds.map((crd) => applyCrd(cluster, crd)));
  const timeoutMs = options.establishedTimeoutMs ?? 30_000;
  await Promise.all(crds.map((crd) => waitForCrdServed(cluster, crd, timeoutMs)));
  return { names: crds.map((crd) => crd.metadata?.name ?? ""), certManagerSkipReason };
}

/**
 * Server-side apply as raw JSON. Not through KubernetesObjectApi: client-node serializes known kinds
 * through its typed models, which drop wire-only keys such as `x-kubernetes-int-or-string` and
 * `x-kubernetes-preserve-unknown-fields` (kubernetes-client/javascript#2483, #2962), and the
 * apiserver then rejects VolSync's and cert-manager's schemas as non-structural.
 */
async function applyCrd(cluster: ClusterAccess, crd: KubernetesObject): Promise<void> {
  const name = crd.metadata?.name ?? "";
  const response = await requestJson(
    cluster,
    "PATCH",
    `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}?fieldManager=${testFieldManager}&force=true`,
    { body: crd, contentType: "application/apply-patch+yaml" },
  );
  if (response.status !== 200 && response.status !== 201) {
    const message = (response.body as { message?: string } | undefined)?.message ?? JSON.stringify(response.body);
    throw new Error(`applying CRD ${name}: HTTP ${response.status}: ${message}`);
  }
}

async function readCrds(file: string): Promise<KubernetesObject[]> {
  const documents = parseAllDocuments(await readFile(file, "utf8"));
  const objects: KubernetesObject[] = [];
  for (const document of documents) {
    if (document.errors.length > 0) throw new Error(`${file}: ${document.errors[0]?.message}`);
    const object = document.toJS() as KubernetesObject | null;
    if (object === null) continue;
    if (object.kind !== "CustomResourceDefinition") throw new Error(`${file}: expected CustomResourceDefinition, got ${object.kind}`);
    objects.push(object);
  }
  return objects;
}

interface CrdShape {
  metadata?: { name?: string };
  spec: { group: string; names: { plural: string }; versions: Array<{ name: string; served: boolean }> };
  status?: { conditions?: Array<{ type: string; status: string }> };
}

async function waitForCrdServed(cluster: ClusterAccess, crd: KubernetesObject, timeoutMs: number): Promise<void> {
  const { metadata, spec } = crd as unknown as CrdShape;
  const name = metadata?.name ?? "";
  let last = "not read yet";
  await eventually(
    () => `CRD ${name} to be served (${last})`,
    async () => {
      const current = await requestJson<CrdShape>(cluster, "GET", `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`);
      const established = current.body?.status?.conditions?.some((c) => c.type === "Established" && c.status === "True");
      if (!established) {
        last = `status ${current.status}, conditions ${JSON.stringify(current.body?.status?.conditions ?? [])}`;
        return undefined;
      }
      // Established means the storage is ready; clients that resolve kinds through discovery
      // also need every served version listed there.
      const served = spec.versions.filter((v) => v.served);
      const listed = await Promise.all(
        served.map(async (v) => {
          const discovery = await requestJson<{ resources?: Array<{ name: string }> }>(cluster, "GET", `/apis/${spec.group}/${v.name}`);
          return discovery.body?.resources?.some((r) => r.name === spec.names.plural) ?? false;
        }),
      );
      last = "established, not yet in discovery";
      return listed.every(Boolean) ? true : undefined;
    },
    { timeoutMs },
  );
}

async function yamlFilesIn(dir: string): Promise<string[]> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (error) {
    throw new Error(`CRD directory ${dir} unreadable (${(error as NodeJS.ErrnoException).code}); set PVC_GUARDIAN_SHARED if shared/ is elsewhere`);
  }
  const files = entries.filter((f) => f.endsWith(".yaml") || f.endsWith(".yml")).sort();
  if (files.length === 0) throw new Error(`no CRD YAML files in ${dir}`);
  return files.map((f) => path.join(dir, f));
}

function goModDownload(module: string, version: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      "go",
      ["mod", "download", "-json", `${module}@${version}`],
      // Outside any module, so the project's own go.mod (if any) cannot interfere.
      { cwd: cacheDir(), timeout: 300_000, maxBuffer: 4 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error !== null && (error as NodeJS.ErrnoException).code === "ENOENT") {
          return reject(new Error("the Go toolchain (go) is not on PATH"));
        }
        let info: { Dir?: string; Error?: string } = {};
        try {
          info = JSON.parse(stdout) as typeof info;
        } catch {
          // Reported below with stderr.
        }
        if (info.Dir !== undefined && info.Error === undefined) return resolve(info.Dir);
        reject(new Error(`go mod download ${module}@${version} failed: ${info.Error ?? stderr.trim() ?? error?.message}`));
      },
    );
  });
}
