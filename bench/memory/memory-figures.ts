// Memory figures of the image's process, for the memory and end-to-end benchmarks: the
// Deployment's memory request and limit, Kubernetes quantities in MiB, and a process's RSS from
// /proc. Building and starting the bundle is test/harness/image-process.ts.

import { readFile } from "node:fs/promises";
import path from "node:path";
import { projectRoot } from "../../test/harness/crds.ts";

/** The Deployment's container memory request and limit, as written (e.g. "128Mi"). */
export async function deploymentMemory(): Promise<{ request?: string; limit?: string }> {
  const deployment = await readFile(path.join(projectRoot(), "manifests", "deployment.yaml"), "utf8");
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

/** VmRSS (current), VmHWM (the kernel's high-water mark) or a part of VmRSS of a process, in MiB. */
export async function rssMiB(pid: number, field: "VmRSS" | "VmHWM" | "RssAnon" | "RssFile" = "VmRSS"): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, "m").exec(status);
  return match ? Number(match[1]) / 1024 : Number.NaN;
}
