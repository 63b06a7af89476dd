// The operator's policy as the domain sees it, after config.ts has validated it. Defaults here
// reproduce the seed design exactly (README, "Migrating from the Kyverno policy").
import { repositoryForNamespace, type LabelSelector, type RepositoryScope } from "./repository-mapping.ts";

export type Retention = {
  hourly?: number;
  daily?: number;
  weekly?: number;
  monthly?: number;
  yearly?: number;
  latest?: number;
};

export type Tier = {
  /** Five-field cron; `H` in the minute field means a stable per-PVC minute. */
  schedule: string;
  retain: Retention;
};

export type MoverSecurityContext = { runAsUser: number; runAsGroup: number; fsGroup: number };

export type ResourceDefaults = {
  copyMethod: "Snapshot" | "Clone" | "Direct" | "None";
  storageClassName: string;
  volumeSnapshotClassName: string;
  cacheCapacity: string;
  compression: string;
  parallelism: number;
  moverSecurityContext: MoverSecurityContext;
};

/** An S3 repository as the policy names it; `url` is absent when the Secret's KOPIA_REPOSITORY names it. */
export type S3Repository = { url?: string };

/** The keys of a VolSync repository Secret that point the Kopia mover at S3. */
export const S3_SECRET_KEYS = [
  "KOPIA_REPOSITORY",
  "KOPIA_PASSWORD",
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
  "AWS_S3_ENDPOINT",
  "AWS_S3_DISABLE_TLS",
  "AWS_REGION",
] as const;

/** Where mover Jobs reach an NFS-hosted repository, mounted without mutating VolSync's Jobs. */
export type NfsRepository = { server: string; path: string; mountPath: string };

export type Policy = {
  tiers: Readonly<Record<string, Tier>>;
  resources: ResourceDefaults;
  firstBackupDelayMs: number;
  sourceSecret: { namespace: string; name: string };
  nfs?: NfsRepository;
  /**
   * The repository is in S3-compatible storage (never together with `nfs`): mover Jobs reach it
   * over the network with the keys the Secret clone carries, so no mover volume is added.
   */
  s3?: S3Repository;
  /** Namespaces whose PVCs are never ours, whatever their labels say. */
  excludedNamespaces: readonly string[];
  /** Break-glass: the validator allows everything, with a warning. */
  dormant: boolean;
  /**
   * Repositories beside the default one (the fields above), each for the namespaces it names or
   * selects; the rest use the default. See repository-mapping.ts for the rules.
   */
  additionalRepositories?: readonly AdditionalRepository[];
};

/** The name the default repository (sourceSecret, nfs and s3 at the top of the policy) goes by. */
export const DEFAULT_REPOSITORY_NAME = "default";

export type AdditionalRepository = {
  name: string;
  sourceSecret: { namespace: string; name: string };
  nfs?: NfsRepository;
  s3?: S3Repository;
  namespaces?: readonly string[];
  namespaceSelector?: LabelSelector;
};

/** The policy as one repository's namespaces see it: its source Secret and mover volume. */
export type RepositoryPolicy = Policy & { repositoryName: string };

function scopesOf(policy: Pick<Policy, "additionalRepositories">): RepositoryScope[] {
  return [
    { name: DEFAULT_REPOSITORY_NAME, isDefault: true },
    ...(policy.additionalRepositories ?? []).map((repository) => ({
      name: repository.name,
      ...(repository.namespaces ? { namespaces: repository.namespaces } : {}),
      ...(repository.namespaceSelector ? { namespaceSelector: repository.namespaceSelector } : {}),
    })),
  ];
}

/** Whether choosing a namespace's repository needs the namespace's labels. */
export const usesNamespaceSelectors = (policy: Pick<Policy, "additionalRepositories">): boolean =>
  (policy.additionalRepositories ?? []).some((repository) => repository.namespaceSelector !== undefined);

/**
 * The policy for a namespace's repository, or why there is none. The default repository's view is
 * the policy itself; another repository's swaps in its source Secret and mover volume.
 */
export function policyForNamespace(
  policy: Policy,
  namespace: string,
  labels: Readonly<Record<string, string>> | undefined,
): { ok: true; policy: RepositoryPolicy } | { ok: false; reason: string } {
  const choice = repositoryForNamespace(scopesOf(policy), namespace, labels);
  if (!choice.ok) return choice;
  return { ok: true, policy: policyForRepository(policy, choice.repository) };
}

export function policyForRepository(policy: Policy, repositoryName: string): RepositoryPolicy {
  const repository = policy.additionalRepositories?.find((candidate) => candidate.name === repositoryName);
  if (repository === undefined) return { ...policy, repositoryName: DEFAULT_REPOSITORY_NAME };
  const { nfs: _nfs, s3: _s3, ...rest } = policy;
  return {
    ...rest,
    sourceSecret: repository.sourceSecret,
    ...(repository.nfs ? { nfs: repository.nfs } : {}),
    ...(repository.s3 ? { s3: repository.s3 } : {}),
    repositoryName: repository.name,
  };
}

export const DEFAULT_RETENTION: Retention = { hourly: 24, daily: 7, weekly: 4, monthly: 2 };

export const DEFAULT_POLICY: Policy = {
  tiers: {
    hourly: { schedule: "0 * * * *", retain: DEFAULT_RETENTION },
    daily: { schedule: "0 2 * * *", retain: DEFAULT_RETENTION },
  },
  resources: {
    copyMethod: "Snapshot",
    storageClassName: "longhorn",
    volumeSnapshotClassName: "longhorn-snapclass",
    cacheCapacity: "2Gi",
    compression: "zstd-fastest",
    parallelism: 2,
    moverSecurityContext: { runAsUser: 568, runAsGroup: 568, fsGroup: 568 },
  },
  firstBackupDelayMs: 2 * 60 * 60 * 1000,
  sourceSecret: { namespace: "volsync-system", name: "kopia-credentials" },
  excludedNamespaces: ["kube-system", "pvc-guardian", "volsync-system", "longhorn-system"],
  dormant: false,
};
