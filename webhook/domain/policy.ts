// The operator's policy as the domain sees it, after config.ts has validated it. Defaults here
// reproduce the seed design exactly (product.md section 1).

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
export const S3_SECRET_KEYS = ["KOPIA_REPOSITORY", "KOPIA_PASSWORD", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_S3_ENDPOINT", "AWS_S3_DISABLE_TLS", "AWS_REGION"] as const;

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
};

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
