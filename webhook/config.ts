import { readFileSync } from "node:fs";
import { parse as parseYaml, YAMLParseError } from "yaml";
import { z } from "zod";
import { checkScheduleTemplate } from "./domain/backup-schedule.ts";
import { DEFAULT_POLICY, DEFAULT_REPOSITORY_NAME, DEFAULT_RETENTION, type Policy } from "./domain/policy.ts";
import { repositoryScopeProblems } from "./domain/repository-mapping.ts";
import { type S3AddressingChoice, type S3RepositorySettings, isS3RepositoryUrl, resolveS3Settings } from "./kopia/s3-repository-settings.ts";
import type { ReconcileSettings, SweepSettings } from "./reconciler/background-controllers.ts";
import { errorMessage } from "./domain/error-message.ts";

// The one reader of process.env and the policy file. Everything is validated together so a bad
// start lists every problem at once, not the first one per restart.
//
// Every value the server runs with is set here: the tunable ones in the schemas below (the policy
// file and the environment), with their defaults; the fixed ones as the named constants that
// follow. Modules take them as required options, with no fallback of their own
// (test/unit/architecture/option-defaults.test.ts keeps it so).

// Fixed values: not settings, but here so every number the server runs with is in one file, each
// with the reason for its value.

/**
 * Leader election as client-go (and so kube-controller-manager) runs it by default: a lease of
 * 15 s (policy reconcile.leaseDuration), renewed every 2 s, and a leader that has not renewed
 * within two thirds of the lease steps down, a third of a lease before anyone else may take over.
 */
export const LEASE_RETRY_PERIOD_MS = 2_000;
export const renewDeadlineFor = (leaseDurationMs: number): number => Math.floor((leaseDurationMs * 2) / 3);

/**
 * The shortest wait between a watch event and the pass it asks for: a burst of PVC changes (a
 * StatefulSet scaling, a kustomize apply) becomes one pass, and a second is short next to the
 * mover's wait for the Secret clone. Larger clusters space passes further (event-pass-delay.ts).
 */
export const WATCH_DEBOUNCE_MS = 1_000;

/**
 * Objects per list request, as client-go's pager and kubectl's --chunk-size: a thousand PVCs cost
 * two requests, and one page stays a few MB for the API server and for our heap.
 */
export const LIST_PAGE_SIZE = 500;

/**
 * The longest one API server request (a watch excepted) may take: client-go's default timeout
 * for a single call. A reconcile pass or a validator write that waits longer gives up and retries.
 */
export const KUBE_REQUEST_TIMEOUT_MS = 30_000;

/**
 * How long credentials read from the token file or kubeconfig are reused. The kubelet rotates
 * projected ServiceAccount tokens well before they expire (at 80% of an hour at the earliest), so
 * reading them once a minute always sends a valid one, as client-go's file token source does.
 */
export const KUBE_CREDENTIAL_REFRESH_MS = 60_000;

/**
 * A failed API request that is safe to repeat (no answer, 429, 5xx) is tried five times in all,
 * 100 ms apart doubling to 2 s (jittered): a restarting API server is back within that, and the
 * whole curve (about 3 s) stays inside one admission deadline.
 */
export const API_REQUEST_RETRY = { maxAttempts: 5, initialDelayMs: 100, maxDelayMs: 2_000 } as const;

/**
 * Deletes in flight during a sweep. Deletions are rare, and the breaker holds a sweep that would
 * delete many (orphan-plan.ts): eight at a time clear a normal sweep's handful at once without a
 * burst of deletes on the API server.
 */
export const SWEEP_DELETE_CONCURRENCY = 8;

/**
 * How often admission checks that a ReplicationDestination it deleted to replace is gone (its
 * finalizers can hold it briefly). The review waits for it, so the poll is short next to the
 * admission deadline; the review's deadline bounds the wait.
 */
export const REPLACE_POLL_MS = 100;

/**
 * Bounds on parsing one admission body (json-shape.ts), checked before JSON.parse. An
 * AdmissionReview of a PVC nests about 10 deep and holds a few hundred values; a 3 MiB body of
 * tiny values could hold over a million, and 2.5 million nested arrays exhaust the heap.
 */
export const ADMISSION_JSON_SHAPE = { maxDepth: 64, maxValues: 100_000 } as const;

/**
 * The self-probe (a TLS request to our own /healthz) every 10 s, as often as a kubelet probes by
 * default; an answer over loopback takes milliseconds, so 2 s without one means the listener or
 * the event loop is stuck.
 */
export const SELF_PROBE_INTERVAL_MS = 10_000;
export const SELF_PROBE_TIMEOUT_MS = 2_000;

/**
 * The operations port serves few clients (Prometheus, an operator's curl), so it has a small
 * connection cap of its own. It closes last on shutdown, so /metrics and /readyz?verbose can be
 * read through the drain, and its requests are short scrapes: a second is enough for them.
 */
export const OPS_MAX_CONNECTIONS = 32;
export const OPS_DRAIN_TIMEOUT_MS = 1_000;

/**
 * Bound on the cluster reads of one read-API request. The read API answers people and scripts,
 * not the API server: ten seconds covers a slow API server's two GETs and still frees a request
 * that would hang.
 */
export const READ_API_REQUEST_TIMEOUT_MS = 10_000;

/**
 * How the read API reads the cluster's ServiceAccount signing keys. Keys are re-read hourly even
 * when every kid is known, so a removed key stops verifying within the hour; an unknown kid re-reads
 * them at most every 10 s, so forged kids cannot flood the API server; after a failed read, none
 * for 1 s doubling to 60 s (jittered), so a failing API server is not asked on every request.
 */
export const SIGNING_KEY_READS = { maxKeyAgeMs: 60 * 60_000, minRefreshIntervalMs: 10_000, backoff: { initialMs: 1_000, maxMs: 60_000 } } as const;

/**
 * Reading the VolSync CRDs: start-up waits up to 10 s for the first read, then serves with the
 * capabilities unknown (treated as supported; strict writes still refuse unknown fields). A failed
 * read or watch is retried after 1 s, doubling to a minute: the CRDs change only on a VolSync
 * upgrade, so a slow retry costs little.
 */
export const VOLSYNC_CAPABILITIES = { startTimeoutMs: 10_000, retryDelayMs: 1_000, maxRetryDelayMs: 60_000 } as const;

/**
 * Namespace labels (for repositories chosen by namespaceSelector): a failed list or watch is
 * retried after 1 s, doubling to 30 s. Until the first list succeeds no namespace's repository can
 * be chosen by its labels, so the first retries come soon.
 */
export const NAMESPACE_LABELS_RETRY = { retryDelayMs: 1_000, maxRetryDelayMs: 30_000 } as const;

/**
 * An S3 request (headers and body) that takes longer than this fails, so an endpoint that stops
 * answering makes the catalog answer "unknown" instead of holding its refresh. The policy's
 * repository.s3.requestTimeout changes it for the server; the CLI uses it as is.
 */
export const DEFAULT_S3_REQUEST_TIMEOUT_MS = 10_000;
/** Virtual-hosted style for AWS's own endpoints and path style for any other, as kopia's S3 client chooses. */
export const DEFAULT_S3_ADDRESSING: S3AddressingChoice = "auto";

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses "500ms", "90s", "1h30m", "2h"; undefined when it is not a duration. */
export function parseDurationMs(text: string): number | undefined {
  const trimmed = text.trim();
  if (!/^(\d+(\.\d+)?(ms|s|m|h|d))+$/.test(trimmed)) return undefined;
  let total = 0;
  for (const [, amount, unit] of trimmed.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)) total += Number(amount) * DURATION_UNITS_MS[unit!]!;
  return total;
}

const duration = z.string().transform((text, ctx) => {
  const ms = parseDurationMs(text);
  if (ms === undefined) {
    ctx.addIssue({ code: "custom", message: `"${text}" is not a duration such as 500ms, 90s, 15m or 2h` });
    return z.NEVER;
  }
  return ms;
});

const count = z.number().int().min(0);
const kubeName = z
  .string()
  .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, "must be a Kubernetes object name")
  .max(253);
const schedule = z.string().superRefine((text, ctx) => {
  const problem = checkScheduleTemplate(text);
  if (problem) ctx.addIssue({ code: "custom", message: problem });
});

// VolSync mounts a mover volume at /mnt/<mountPath> and refuses one whose mountPath holds a path
// separator ("moverVolume mount path cannot contain path separators"): no mover Job is created at
// all. "." and ".." would mount over /mnt itself or outside it.
const moverMountPath = z.string().superRefine((text, ctx) => {
  if (text === "" || text === "." || text === "..") {
    ctx.addIssue({ code: "custom", message: `"${text}" is not a directory name; use one path segment such as "repository" (mounted at /mnt/repository)` });
  } else if (text.includes("/")) {
    ctx.addIssue({
      code: "custom",
      message: `"${text}" contains a path separator; VolSync mounts it at /mnt/<mountPath> and refuses separators, so use one path segment such as "repository"`,
    });
  }
});

const retentionSchema = z.object({ hourly: count, daily: count, weekly: count, monthly: count, yearly: count, latest: count }).partial().strict();

const tierSchema = z.object({ schedule, retain: retentionSchema.default(DEFAULT_RETENTION) }).strict();

const d = DEFAULT_POLICY;
const TIER_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
/** Where a Kopia repository is and how mover Jobs reach it; the same shape for every repository. */
const repositoryLocationFields = z.object({
  path: z.string().min(1).optional(),
  passwordFile: z.string().min(1).optional(),
  nfs: z
    .object({ server: z.string().min(1), path: z.string().startsWith("/"), mountPath: moverMountPath.default("repository") })
    .strict()
    .optional(),
  // A repository in S3-compatible storage. The VolSync repository Secret, mounted as a folder
  // at credentialsDir, supplies what is not set here: KOPIA_REPOSITORY, AWS_S3_ENDPOINT,
  // AWS_S3_DISABLE_TLS and AWS_REGION once at start, and the access keys at every request.
  s3: z
    .object({
      credentialsDir: z.string().min(1),
      url: z.string().startsWith("s3://", "must look like s3://bucket/prefix").optional(),
      endpoint: z.string().min(1).optional(),
      region: z.string().min(1).optional(),
      disableTls: z.boolean().optional(),
      addressing: z.enum(["auto", "path", "virtual-hosted"]).default(DEFAULT_S3_ADDRESSING),
      caBundleFile: z.string().min(1).optional(),
      requestTimeout: duration.default(DEFAULT_S3_REQUEST_TIMEOUT_MS),
    })
    .strict()
    .optional(),
});

/** An S3 repository and a folder or an NFS mover volume exclude each other. */
function checkRepositoryLocation(repository: { s3?: unknown; nfs?: unknown; path?: unknown }, ctx: z.RefinementCtx): void {
  if (repository.s3 && repository.nfs) {
    ctx.addIssue({ code: "custom", path: ["s3"], message: "an S3 repository needs no NFS mover volume; set repository.s3 or repository.nfs, not both" });
  }
  if (repository.s3 && repository.path) {
    ctx.addIssue({ code: "custom", path: ["s3"], message: "set repository.s3 or repository.path (a folder), not both" });
  }
}

const repositoryLocation = repositoryLocationFields.strict().superRefine(checkRepositoryLocation);

const labelSelector = z
  .object({
    matchLabels: z.record(z.string(), z.string()).optional(),
    matchExpressions: z
      .array(z.object({ key: z.string().min(1), operator: z.enum(["In", "NotIn", "Exists", "DoesNotExist"]), values: z.array(z.string()).optional() }).strict())
      .optional(),
  })
  .strict();

const policyFileSchema = z
  .object({
    tiers: z
      .record(z.string(), tierSchema)
      .superRefine((tiers, ctx) => {
        if (Object.keys(tiers).length === 0) ctx.addIssue({ code: "custom", message: "at least one tier is needed" });
        for (const name of Object.keys(tiers)) {
          if (!TIER_NAME.test(name)) {
            ctx.addIssue({ code: "custom", path: [name], message: `tier name "${name}" is not a valid label value (letters, digits, -, _, ., at most 63)` });
          }
        }
      })
      .prefault(Object.fromEntries(Object.entries(d.tiers).map(([name, tier]) => [name, { schedule: tier.schedule, retain: { ...tier.retain } }]))),
    resources: z
      .object({
        copyMethod: z.enum(["Snapshot", "Clone", "Direct", "None"]).default(d.resources.copyMethod),
        storageClassName: z.string().min(1).default(d.resources.storageClassName),
        volumeSnapshotClassName: z.string().min(1).default(d.resources.volumeSnapshotClassName),
        cacheCapacity: z
          .string()
          .regex(/^\d+(\.\d+)?([KMGTPE]i?)?$/, "must be a Kubernetes quantity such as 2Gi")
          .default(d.resources.cacheCapacity),
        compression: z.string().min(1).default(d.resources.compression),
        parallelism: z.number().int().min(1).max(64).default(d.resources.parallelism),
        moverSecurityContext: z
          .object({
            runAsUser: count.default(d.resources.moverSecurityContext.runAsUser),
            runAsGroup: count.default(d.resources.moverSecurityContext.runAsGroup),
            fsGroup: count.default(d.resources.moverSecurityContext.fsGroup),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    firstBackupDelay: duration.default(d.firstBackupDelayMs),
    sourceSecret: z
      .object({ namespace: kubeName, name: kubeName })
      .strict()
      .default({ ...d.sourceSecret }),
    repository: repositoryLocation.default({}),
    // Repositories beside the default one, each for the namespaces it names or selects; see
    // domain/repository-mapping.ts. A namespace only ever receives its own repository's Secret.
    repositories: z
      .array(
        repositoryLocationFields
          .extend({
            name: kubeName.refine((name) => name !== DEFAULT_REPOSITORY_NAME, `"${DEFAULT_REPOSITORY_NAME}" names the top-level repository`),
            sourceSecret: z.object({ namespace: kubeName, name: kubeName }).strict(),
            namespaces: z.array(kubeName).optional(),
            namespaceSelector: labelSelector.optional(),
          })
          .strict()
          .superRefine(checkRepositoryLocation),
      )
      .default([])
      .superRefine((repositories, ctx) => {
        for (const problem of repositoryScopeProblems([{ name: DEFAULT_REPOSITORY_NAME, isDefault: true }, ...repositories]))
          ctx.addIssue({ code: "custom", message: problem });
        repositories.forEach((repository, index) => {
          if (repository.namespaces === undefined && repository.namespaceSelector === undefined) {
            ctx.addIssue({
              code: "custom",
              path: [index],
              message: `repository ${repository.name} names no namespaces and no namespaceSelector, so no PVC would use it`,
            });
          }
          if (repository.path === undefined && repository.s3 === undefined) {
            ctx.addIssue({ code: "custom", path: [index], message: `repository ${repository.name} needs a path (a folder) or s3` });
          }
          if (repository.path !== undefined && repository.passwordFile === undefined) {
            ctx.addIssue({ code: "custom", path: [index], message: `repository ${repository.name}: a repository path needs its passwordFile` });
          }
        });
      }),
    excludedNamespaces: z.array(kubeName).default([...d.excludedNamespaces]),
    admission: z
      .object({
        deadline: duration.prefault("4s"),
        webhookTimeoutSeconds: z.number().int().min(1).max(30).default(10),
      })
      .strict()
      .prefault({}),
    catalog: z
      .object({
        refreshInterval: duration.prefault("1m"),
        freshnessBound: duration.prefault("10m"),
        missRefreshTimeout: duration.prefault("1500ms"),
      })
      .strict()
      .prefault({}),
    reconcile: z
      .object({
        interval: duration.prefault("1m"),
        leaseDuration: duration.prefault("15s"),
        adoptKyverno: z.boolean().default(false),
        // Writes in flight during a pass. The first pass over an existing cluster creates two
        // objects per protected PVC; the API server, not this client, is the limit, and its
        // priority and fairness keeps user requests ahead of a burst from one controller.
        writeConcurrency: z.number().int().min(1).max(200).default(32),
      })
      .strict()
      .prefault({}),
    sweep: z
      .object({ schedule: schedule.prefault("*/15 * * * *"), gracePeriod: duration.prefault("1h"), dryRun: z.boolean().default(false) })
      .strict()
      .prefault({}),
    // Bounds on what one caller can make the server hold or do; every pod can reach the webhook
    // port, so these are what an attacker inside the cluster meets. The defaults:
    // - maxBodyBytes 3 MiB: the API server itself refuses request bodies over 3 MiB (its
    //   --max-request-body-bytes default) and etcd stores objects up to 1.5 MiB. A CREATE review
    //   carries the object once (oldObject is null) plus about 2 KiB of request fields, so every
    //   PVC the API server could accept and store fits twice over; a bigger body is not a review
    //   of a real PVC.
    // - maxInFlightBodyBytes 16 MiB: about five largest bodies at once. A body held costs 4-5x its
    //   size (chunks, decoded text, parsed object), so at most ~80 MB of the 192 MB heap.
    // - maxConcurrentReviews 32: above the API servers' bursts (one connection per call in flight);
    //   the 33rd review is answered at once instead of queued.
    // - handshakeTimeout 5s, headersTimeout 5s, requestTimeout 10s: the API server sends a review
    //   in one write right after connecting; these only cut clients that trickle.
    // - keepAliveTimeout 120s: above the API server's 90 s idle timeout, so the client closes idle
    //   connections first; if we closed one first, a review sent on it at that moment would fail
    //   and fall to the failurePolicy.
    // - maxConnections 256: a few API servers' pools and the probes, with room; each idle TLS
    //   connection costs tens of KiB.
    // The nesting and value-count bounds on a body are fixed: ADMISSION_JSON_SHAPE above.
    server: z
      .object({
        maxBodyBytes: z
          .number()
          .int()
          .min(64 * 1024)
          .max(64 * 1024 * 1024)
          .default(3 * 1024 * 1024),
        maxInFlightBodyBytes: z
          .number()
          .int()
          .min(64 * 1024)
          .default(16 * 1024 * 1024),
        maxConcurrentReviews: z.number().int().min(1).max(10_000).default(32),
        handshakeTimeout: duration.prefault("5s"),
        headersTimeout: duration.prefault("5s"),
        requestTimeout: duration.prefault("10s"),
        keepAliveTimeout: duration.prefault("120s"),
        maxConnections: z.number().int().min(1).max(100_000).default(256),
      })
      .strict()
      .prefault({}),
    readApi: z
      .object({
        audience: z.string().min(1).default("pvc-guardian"),
        allowedServiceAccounts: z
          .array(z.string().regex(/^system:serviceaccount:[^:]+:[^:]+$/, "must be system:serviceaccount:<namespace>:<name>"))
          .default([]),
      })
      .strict()
      .prefault({}),
    dormant: z.boolean().default(d.dormant),
  })
  .strict()
  .superRefine((file, ctx) => {
    if (file.admission.deadline >= file.admission.webhookTimeoutSeconds * 1_000) {
      ctx.addIssue({
        code: "custom",
        path: ["admission", "deadline"],
        message: `must be below the webhook timeout (${file.admission.webhookTimeoutSeconds}s), so pvc-guardian answers before the API server gives up`,
      });
    }
    if (file.server.maxInFlightBodyBytes < file.server.maxBodyBytes) {
      ctx.addIssue({
        code: "custom",
        path: ["server", "maxInFlightBodyBytes"],
        message: "must be at least server.maxBodyBytes, or the largest allowed review could never be read",
      });
    }
    if (file.server.headersTimeout > file.server.requestTimeout) {
      ctx.addIssue({
        code: "custom",
        path: ["server", "headersTimeout"],
        message: "must not be longer than server.requestTimeout (the headers are part of the request)",
      });
    }
    if (file.catalog.missRefreshTimeout >= file.admission.deadline) {
      ctx.addIssue({ code: "custom", path: ["catalog", "missRefreshTimeout"], message: "must be below admission.deadline" });
    }
    if (file.catalog.refreshInterval >= file.catalog.freshnessBound) {
      ctx.addIssue({
        code: "custom",
        path: ["catalog", "freshnessBound"],
        message: "must be longer than catalog.refreshInterval, or every answer goes stale between refreshes",
      });
    }
  });

export type PolicyFile = z.output<typeof policyFileSchema>;

const envSchema = z.object({
  PVC_GUARDIAN_POLICY_FILE: z.string().min(1).optional(),
  PVC_GUARDIAN_TLS_CERT_FILE: z.string().min(1).default("/etc/pvc-guardian/tls/tls.crt"),
  PVC_GUARDIAN_TLS_KEY_FILE: z.string().min(1).default("/etc/pvc-guardian/tls/tls.key"),
  PVC_GUARDIAN_LISTEN_HOST: z.string().min(1).default("0.0.0.0"),
  PVC_GUARDIAN_PORT: z.coerce.number().int().min(0).max(65535).default(8443),
  PVC_GUARDIAN_OPS_PORT: z.coerce.number().int().min(0).max(65535).default(9090),
  PVC_GUARDIAN_CLIENT_CA_FILE: z.string().min(1).optional(),
  PVC_GUARDIAN_NAMESPACE: kubeName.default("pvc-guardian"),
  PVC_GUARDIAN_POD_NAME: z.string().min(1).optional(),
  PVC_GUARDIAN_REPOSITORY_PATH: z.string().min(1).optional(),
  PVC_GUARDIAN_PASSWORD_FILE: z.string().min(1).optional(),
  PVC_GUARDIAN_REPOSITORY: z.string().startsWith("s3://", "must look like s3://bucket/prefix (use PVC_GUARDIAN_REPOSITORY_PATH for a folder)").optional(),
  PVC_GUARDIAN_S3_CREDENTIALS_DIR: z.string().min(1).optional(),
  PVC_GUARDIAN_KUBERNETES: z.enum(["in-cluster", "kubeconfig", "off"]).default("in-cluster"),
  PVC_GUARDIAN_KUBECONFIG: z.string().min(1).optional(),
  PVC_GUARDIAN_LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  // How often the serving pair's files are checked for a change (tls-reloader.ts): two stat calls
  // per check, and the kubelet takes up to about a minute to update a Secret volume anyway.
  PVC_GUARDIAN_TLS_RELOAD_INTERVAL: duration.refine((ms) => ms >= 1_000, "must be at least 1s").prefault("10s"),
  // On SIGTERM: /readyz answers 503 for the drain delay while new connections still arrive (the
  // endpoints controller and kube-proxy take a few seconds to stop sending them), then in-flight
  // reviews get the drain timeout, which matches the webhook's timeoutSeconds: the API server has
  // given up on a review by then. Their sum stays below the pod's terminationGracePeriodSeconds.
  PVC_GUARDIAN_DRAIN_DELAY: duration.prefault("5s"),
  PVC_GUARDIAN_DRAIN_TIMEOUT: duration.prefault("10s"),
});

export type Config = {
  policy: Policy;
  /**
   * port: the webhook's HTTPS listener (admission, /healthz, terse /readyz, read API).
   * opsPort: plain HTTP for /metrics and the detailed /readyz, which name PVCs and the repository.
   */
  listen: { host: string; port: number; opsPort: number };
  /**
   * clientCaFile: when set, the admission routes answer only callers presenting a client
   * certificate signed by this CA (the API server, configured with a kubeConfigFile).
   */
  tls: { certFile: string; keyFile: string; reloadIntervalMs: number; clientCaFile?: string };
  /** The namespace pvc-guardian runs in: its Leases live there and its PVCs are never ours. */
  namespace: string;
  podName: string;
  /** `path` is the folder, or `s3://bucket/prefix` for an S3 repository (then `s3` says how to reach it). */
  repository?: { path: string; passwordFile: string; s3?: S3RepositoryConfig };
  /** The catalogs' side of policy.additionalRepositories, in the same order. */
  additionalRepositories: AdditionalRepositoryLocation[];
  catalog: { refreshIntervalMs: number; freshnessBoundMs: number; missRefreshTimeoutMs: number };
  /** deadlineMs: each review's one deadline, owned by the admission route. */
  admission: {
    deadlineMs: number;
    webhookTimeoutSeconds: number;
    maxBodyBytes: number;
    maxInFlightBodyBytes: number;
    maxConcurrentReviews: number;
    jsonShape: { maxDepth: number; maxValues: number };
  };
  transport: { handshakeTimeoutMs: number; headersTimeoutMs: number; requestTimeoutMs: number; keepAliveTimeoutMs: number; maxConnections: number };
  opsListener: { maxConnections: number; drainTimeoutMs: number };
  selfProbe: { intervalMs: number; timeoutMs: number };
  /**
   * listPageSize: objects per list request, for every list the reconciler and the sweeper make;
   * requestTimeoutMs and credentialRefreshMs: the API client's (KUBE_REQUEST_TIMEOUT_MS,
   * KUBE_CREDENTIAL_REFRESH_MS).
   */
  kubernetes: {
    mode: "in-cluster" | "kubeconfig" | "off";
    kubeconfigPath?: string;
    listPageSize: number;
    requestTimeoutMs: number;
    credentialRefreshMs: number;
    /** API_REQUEST_RETRY. */
    retry: { maxAttempts: number; initialDelayMs: number; maxDelayMs: number };
  };
  /** replacePollMs: admission generation's wait for a replaced ReplicationDestination to be gone. */
  reconcile: ReconcileSettings & { replacePollMs: number };
  sweep: SweepSettings;
  readApi: {
    audience: string;
    allowedServiceAccounts: string[];
    requestTimeoutMs: number;
    signingKeyReads: { maxKeyAgeMs: number; minRefreshIntervalMs: number; backoff: { initialMs: number; maxMs: number } };
  };
  volSyncCapabilities: { startTimeoutMs: number; retryDelayMs: number; maxRetryDelayMs: number };
  namespaceLabels: { retryDelayMs: number; maxRetryDelayMs: number };
  /**
   * On SIGTERM: keep serving with /readyz at 503 for drainDelayMs so endpoints stop sending new
   * connections, then give in-flight reviews drainTimeoutMs. Their sum stays below the pod's
   * terminationGracePeriodSeconds.
   */
  shutdown: { drainDelayMs: number; drainTimeoutMs: number };
  logLevel: string;
};

export type AdditionalRepositoryLocation = { name: string; path: string; passwordFile: string; s3?: S3RepositoryConfig };

export type S3RepositoryConfig = {
  settings: S3RepositorySettings;
  /** The mounted Secret: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are read from it at every request. */
  credentialsDir: string;
  requestTimeoutMs: number;
};

/** The VolSync Secret keys that say where the repository is, read from the mounted Secret at start. */
const S3_LOCATION_KEYS = ["KOPIA_REPOSITORY", "AWS_S3_ENDPOINT", "AWS_S3_DISABLE_TLS", "AWS_REGION", "AWS_DEFAULT_REGION"] as const;

function resolveS3Repository(
  fromFile: PolicyFile["repository"]["s3"],
  env: { PVC_GUARDIAN_REPOSITORY?: string | undefined; PVC_GUARDIAN_S3_CREDENTIALS_DIR?: string | undefined },
  readFile: FileReader,
): { ok: true; s3?: S3RepositoryConfig } | { ok: false; problems: string[] } {
  const credentialsDir = env.PVC_GUARDIAN_S3_CREDENTIALS_DIR ?? fromFile?.credentialsDir;
  if (env.PVC_GUARDIAN_REPOSITORY === undefined && fromFile === undefined) return { ok: true };
  if (credentialsDir === undefined) {
    return {
      ok: false,
      problems: [
        "repository: an S3 repository needs the VolSync repository Secret mounted as a folder: set repository.s3.credentialsDir or PVC_GUARDIAN_S3_CREDENTIALS_DIR",
      ],
    };
  }
  const secretKeys: Record<string, string | undefined> = {};
  for (const key of S3_LOCATION_KEYS) {
    try {
      secretKeys[key] = readFile(`${credentialsDir}/${key}`).trim();
    } catch {
      // An absent key takes the mover's default, as an absent Secret key does in the mover.
    }
  }
  const repositoryUrl = env.PVC_GUARDIAN_REPOSITORY ?? fromFile?.url ?? secretKeys["KOPIA_REPOSITORY"];
  if (repositoryUrl === undefined || !isS3RepositoryUrl(repositoryUrl)) {
    return {
      ok: false,
      problems: [`repository: no s3:// repository: set PVC_GUARDIAN_REPOSITORY or repository.s3.url, or KOPIA_REPOSITORY=s3://… in ${credentialsDir}`],
    };
  }
  const resolved = resolveS3Settings({
    repositoryUrl,
    keys: {
      ...secretKeys,
      ...(fromFile?.endpoint !== undefined ? { AWS_S3_ENDPOINT: fromFile.endpoint } : {}),
      ...(fromFile?.region !== undefined ? { AWS_REGION: fromFile.region } : {}),
      ...(fromFile?.disableTls !== undefined ? { AWS_S3_DISABLE_TLS: String(fromFile.disableTls) } : {}),
    },
    addressing: fromFile?.addressing ?? DEFAULT_S3_ADDRESSING,
    ...(fromFile?.caBundleFile ? { caBundleFile: fromFile.caBundleFile } : {}),
  });
  if (!resolved.ok) return { ok: false, problems: resolved.problems.map((p) => `repository.s3: ${p}`) };
  return { ok: true, s3: { settings: resolved.settings, credentialsDir, requestTimeoutMs: fromFile?.requestTimeout ?? DEFAULT_S3_REQUEST_TIMEOUT_MS } };
}

export type ConfigResult = { ok: true; config: Config } | { ok: false; problems: string[] };

function formatIssues(source: string, issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.map((issue) => {
    const where = issue.path.length > 0 ? issue.path.join(".") : "(top level)";
    return `${source}: ${where}: ${issue.message}`;
  });
}

export type FileReader = (path: string) => string;

/** Parses a policy file's text; exported for the plan CLI and tests. */
export function parsePolicyFile(text: string, source: string): { ok: true; file: PolicyFile } | { ok: false; problems: string[] } {
  let raw: unknown;
  try {
    raw = text.trim() === "" ? {} : parseYaml(text);
  } catch (error) {
    const where = error instanceof YAMLParseError && error.linePos ? ` at line ${error.linePos[0].line}` : "";
    return { ok: false, problems: [`${source}: not valid YAML${where}: ${errorMessage(error).split("\n")[0]}`] };
  }
  if (raw === null || raw === undefined) raw = {};
  const parsed = policyFileSchema.safeParse(raw);
  return parsed.success ? { ok: true, file: parsed.data } : { ok: false, problems: formatIssues(source, parsed.error.issues) };
}

export function toPolicy(file: PolicyFile): Policy {
  return {
    tiers: file.tiers,
    resources: file.resources,
    firstBackupDelayMs: file.firstBackupDelay,
    sourceSecret: file.sourceSecret,
    ...(file.repository.nfs ? { nfs: file.repository.nfs } : {}),
    ...(file.repository.s3 ? { s3: file.repository.s3.url ? { url: file.repository.s3.url } : {} } : {}),
    excludedNamespaces: file.excludedNamespaces,
    dormant: file.dormant,
    ...(file.repositories.length > 0
      ? {
          additionalRepositories: file.repositories.map((repository) => ({
            name: repository.name,
            sourceSecret: repository.sourceSecret,
            ...(repository.nfs ? { nfs: repository.nfs } : {}),
            ...(repository.s3 ? { s3: repository.s3.url ? { url: repository.s3.url } : {} } : {}),
            ...(repository.namespaces ? { namespaces: repository.namespaces } : {}),
            ...(repository.namespaceSelector ? { namespaceSelector: repository.namespaceSelector } : {}),
          })),
        }
      : {}),
  };
}

export function loadConfig(env: Readonly<Record<string, string | undefined>>, readFile: FileReader = (p) => readFileSync(p, "utf8")): ConfigResult {
  const problems: string[] = [];
  // An empty variable (a Deployment's `value: ""`) means unset, never port 0 or an empty path.
  env = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ""));
  const envResult = envSchema.safeParse(env);
  if (!envResult.success) problems.push(...formatIssues("environment", envResult.error.issues));

  let file: PolicyFile | undefined;
  const policyPath = env["PVC_GUARDIAN_POLICY_FILE"];
  let policyText = "";
  if (policyPath) {
    try {
      policyText = readFile(policyPath);
    } catch (error) {
      problems.push(`policy file ${policyPath}: cannot be read: ${errorMessage(error)}`);
    }
  }
  if (problems.every((p) => !p.startsWith("policy file"))) {
    const parsed = parsePolicyFile(policyText, policyPath ? `policy file ${policyPath}` : "built-in policy");
    if (parsed.ok) file = parsed.file;
    else problems.push(...parsed.problems);
  }

  // Rules on the environment alone are checked even when the file is bad, so they are listed too.
  if (envResult.success && envResult.data.PVC_GUARDIAN_KUBERNETES === "kubeconfig" && !envResult.data.PVC_GUARDIAN_KUBECONFIG) {
    problems.push("environment: PVC_GUARDIAN_KUBECONFIG is required when PVC_GUARDIAN_KUBERNETES=kubeconfig");
  }

  if (envResult.success && file) {
    const e = envResult.data;
    const s3 = resolveS3Repository(file.repository.s3, e, readFile);
    const additionalRepositories: AdditionalRepositoryLocation[] = [];
    for (const repository of file.repositories) {
      const resolved = resolveS3Repository(repository.s3, {}, readFile);
      if (!resolved.ok) {
        problems.push(...resolved.problems.map((problem) => `repositories.${repository.name}: ${problem}`));
        continue;
      }
      const path = resolved.s3 ? `s3://${resolved.s3.settings.bucket}/${resolved.s3.settings.prefix}` : repository.path!;
      const password = repository.passwordFile ?? (resolved.s3 ? `${resolved.s3.credentialsDir}/KOPIA_PASSWORD` : undefined);
      additionalRepositories.push({ name: repository.name, path, passwordFile: password!, ...(resolved.s3 ? { s3: resolved.s3 } : {}) });
    }
    let repositoryPath = e.PVC_GUARDIAN_REPOSITORY_PATH ?? file.repository.path;
    let passwordFile = e.PVC_GUARDIAN_PASSWORD_FILE ?? file.repository.passwordFile;
    if (!s3.ok) {
      problems.push(...s3.problems);
    } else if (s3.s3 !== undefined) {
      if (repositoryPath !== undefined) problems.push("repository: an S3 repository and a repository path exclude each other; set one");
      repositoryPath = `s3://${s3.s3.settings.bucket}/${s3.s3.settings.prefix}`;
      // The same Secret holds the password the mover uses.
      passwordFile ??= `${s3.s3.credentialsDir}/KOPIA_PASSWORD`;
    }
    if ((repositoryPath === undefined) !== (passwordFile === undefined)) {
      problems.push("repository: a repository path and a password file go together; set both or neither");
    }
    if (problems.length === 0) {
      const policy = toPolicy(file);
      if (s3.ok && s3.s3 && !policy.s3) policy.s3 = { url: repositoryPath! };
      if (!policy.excludedNamespaces.includes(e.PVC_GUARDIAN_NAMESPACE)) {
        policy.excludedNamespaces = [...policy.excludedNamespaces, e.PVC_GUARDIAN_NAMESPACE];
      }
      return {
        ok: true,
        config: {
          policy,
          listen: { host: e.PVC_GUARDIAN_LISTEN_HOST, port: e.PVC_GUARDIAN_PORT, opsPort: e.PVC_GUARDIAN_OPS_PORT },
          tls: {
            certFile: e.PVC_GUARDIAN_TLS_CERT_FILE,
            keyFile: e.PVC_GUARDIAN_TLS_KEY_FILE,
            reloadIntervalMs: e.PVC_GUARDIAN_TLS_RELOAD_INTERVAL,
            ...(e.PVC_GUARDIAN_CLIENT_CA_FILE ? { clientCaFile: e.PVC_GUARDIAN_CLIENT_CA_FILE } : {}),
          },
          namespace: e.PVC_GUARDIAN_NAMESPACE,
          podName: e.PVC_GUARDIAN_POD_NAME ?? `pvc-guardian-${process.pid}`,
          ...(repositoryPath && passwordFile ? { repository: { path: repositoryPath, passwordFile, ...(s3.ok && s3.s3 ? { s3: s3.s3 } : {}) } } : {}),
          additionalRepositories,
          catalog: {
            refreshIntervalMs: file.catalog.refreshInterval,
            freshnessBoundMs: file.catalog.freshnessBound,
            missRefreshTimeoutMs: file.catalog.missRefreshTimeout,
          },
          admission: {
            deadlineMs: file.admission.deadline,
            webhookTimeoutSeconds: file.admission.webhookTimeoutSeconds,
            maxBodyBytes: file.server.maxBodyBytes,
            maxInFlightBodyBytes: file.server.maxInFlightBodyBytes,
            maxConcurrentReviews: file.server.maxConcurrentReviews,
            jsonShape: { ...ADMISSION_JSON_SHAPE },
          },
          transport: {
            handshakeTimeoutMs: file.server.handshakeTimeout,
            headersTimeoutMs: file.server.headersTimeout,
            requestTimeoutMs: file.server.requestTimeout,
            keepAliveTimeoutMs: file.server.keepAliveTimeout,
            maxConnections: file.server.maxConnections,
          },
          opsListener: { maxConnections: OPS_MAX_CONNECTIONS, drainTimeoutMs: OPS_DRAIN_TIMEOUT_MS },
          selfProbe: { intervalMs: SELF_PROBE_INTERVAL_MS, timeoutMs: SELF_PROBE_TIMEOUT_MS },
          kubernetes: {
            mode: e.PVC_GUARDIAN_KUBERNETES,
            ...(e.PVC_GUARDIAN_KUBECONFIG ? { kubeconfigPath: e.PVC_GUARDIAN_KUBECONFIG } : {}),
            listPageSize: LIST_PAGE_SIZE,
            requestTimeoutMs: KUBE_REQUEST_TIMEOUT_MS,
            credentialRefreshMs: KUBE_CREDENTIAL_REFRESH_MS,
            retry: { ...API_REQUEST_RETRY },
          },
          reconcile: {
            intervalMs: file.reconcile.interval,
            watchDebounceMs: WATCH_DEBOUNCE_MS,
            leaseDurationMs: file.reconcile.leaseDuration,
            renewDeadlineMs: renewDeadlineFor(file.reconcile.leaseDuration),
            retryPeriodMs: LEASE_RETRY_PERIOD_MS,
            adoptKyverno: file.reconcile.adoptKyverno,
            writeConcurrency: file.reconcile.writeConcurrency,
            replacePollMs: REPLACE_POLL_MS,
          },
          sweep: {
            schedule: file.sweep.schedule,
            gracePeriodMs: file.sweep.gracePeriod,
            dryRun: file.sweep.dryRun,
            deleteConcurrency: SWEEP_DELETE_CONCURRENCY,
          },
          readApi: {
            audience: file.readApi.audience,
            allowedServiceAccounts: file.readApi.allowedServiceAccounts,
            requestTimeoutMs: READ_API_REQUEST_TIMEOUT_MS,
            signingKeyReads: { ...SIGNING_KEY_READS, backoff: { ...SIGNING_KEY_READS.backoff } },
          },
          volSyncCapabilities: { ...VOLSYNC_CAPABILITIES },
          namespaceLabels: { ...NAMESPACE_LABELS_RETRY },
          shutdown: { drainDelayMs: e.PVC_GUARDIAN_DRAIN_DELAY, drainTimeoutMs: e.PVC_GUARDIAN_DRAIN_TIMEOUT },
          logLevel: e.PVC_GUARDIAN_LOG_LEVEL,
        },
      };
    }
  }
  return { ok: false, problems };
}

/**
 * The configuration with no environment and no policy file: every default. Tests and benchmarks
 * that build one module take their settings from it instead of copying numbers.
 */
export function defaultConfig(): Config {
  const loaded = loadConfig({}, (path) => {
    throw new Error(`the default configuration reads no file, yet ${path} was asked for`);
  });
  if (!loaded.ok) throw new Error(`the default configuration does not load: ${loaded.problems.join("; ")}`);
  return loaded.config;
}
