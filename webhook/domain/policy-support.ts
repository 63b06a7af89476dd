import type { Policy } from "./policy.ts";

// Whether the installed VolSync can run what the policy asks for. A policy that names an NFS
// repository makes every ReplicationSource and ReplicationDestination carry an NFS mover volume;
// VolSync CRDs without `nfs` in `moverVolumes[].volumeSource` prune it (or, with strict writes,
// refuse the object), and mover Jobs built from such objects find no repository. Judged here so
// readiness, the generator and their tests agree on one answer and one sentence.

/** What the installed VolSync CRDs support, as far as pvc-guardian could read them. */
export type VolSyncCapabilities =
  | {
      known: true;
      /** True when every CRD pvc-guardian writes has `spec.kopia.moverVolumes[].volumeSource.nfs`. */
      hasNfsMoverVolumes: boolean;
      /** The CRDs (by name) that lack it, for the message. */
      crdsWithoutNfs: readonly string[];
    }
  /** Not read (no RBAC, API server unreachable, CRD missing): nothing is blocked on a guess. */
  | { known: false; reason: string };

export type PolicySupport = { supported: true } | { supported: false; problem: string };

/**
 * Unknown capabilities count as supported: a strict write of an object the CRDs cannot hold fails
 * loudly anyway, and blocking every PVC because a CRD could not be read would be worse.
 */
export function judgePolicySupport(policy: Pick<Policy, "nfs" | "additionalRepositories">, capabilities: VolSyncCapabilities): PolicySupport {
  const nfs = policy.nfs ?? policy.additionalRepositories?.find((repository) => repository.nfs !== undefined)?.nfs;
  if (nfs === undefined || !capabilities.known || capabilities.hasNfsMoverVolumes) return { supported: true };
  return {
    supported: false,
    problem:
      `the policy names an NFS repository (repository.nfs: ${nfs.server}:${nfs.path}), but the installed VolSync CRDs ` +
      `(${capabilities.crdsWithoutNfs.join(", ")}) have no nfs mover volumes (spec.kopia.moverVolumes[].volumeSource.nfs), ` +
      `so no mover Job could reach the repository; upgrade VolSync to a version whose CRDs have nfs mover volumes ` +
      `(for example perfectra1n/volsync v0.17.11), or remove repository.nfs from the policy`,
  };
}
