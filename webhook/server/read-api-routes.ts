// The authenticated read API, served on the webhook's HTTPS listener:
//   GET /v1/backups/{namespace}/{pvc}  the restore decision admission would take now, the Kopia
//                                      identity, the snapshots the catalog holds for it, and the
//                                      restore pvc-guardian last started for it with its verdict
//   GET /v1/audit                      every protected PVC: tier, generated objects, newest
//                                      snapshot, ReplicationSource last sync, verdict
// Every route requires a ServiceAccount token on the allow-list (bearer-auth.ts). The data comes
// through two small ports so the routes run the same over a live cluster and in tests.

import { Hono } from "hono";
import type { CatalogLookup } from "../domain/snapshot-catalog.ts";
import { generatedNames } from "../domain/resource-names.ts";
import { BACKUP_LABEL } from "../domain/wire-names.ts";
import { auditProtectedPvcs, describeBackups, restoreStatusOf, type AuditInventory, type AuditPolicy, type InventoryObject } from "../domain/backup-audit.ts";
import { installErrorAnswers } from "./app-errors.ts";
import { createBearerAuth, type ReadApiCaller, type TokenVerifier } from "./bearer-auth.ts";
import type { Logger } from "../domain/logger.ts";
import { errorMessage } from "../domain/error-message.ts";
import { backupsPathPrefix, auditPath } from "./route-paths.ts";
export { backupsPathPrefix, auditPath };

/** The in-memory snapshot catalog, read only (never a repository read per request). */
export type CatalogReader = {
  /** `namespace` chooses the repository when there is more than one. */
  lookup(identity: string, nowMs: number, namespace?: string): CatalogLookup;
};

/** What the audit needs from the cluster. */
export type AuditSource = {
  /** Throws when any list is partial: an audit on a partial view would report false problems. */
  inventory(signal?: AbortSignal): Promise<AuditInventory>;
  /** One PVC, or undefined when it does not exist. */
  pvc(namespace: string, name: string, signal?: AbortSignal): Promise<InventoryObject | undefined>;
  /** One of our ReplicationDestinations, or undefined when it does not exist or is not ours. */
  replicationDestination?(namespace: string, name: string, signal?: AbortSignal): Promise<InventoryObject | undefined>;
};

export type ReadApiDeps = {
  verifier: TokenVerifier;
  allowedServiceAccounts: readonly string[];
  catalog: CatalogReader;
  /** Absent without API access (local runs): /v1/audit answers 503, /v1/backups works by name. */
  audit?: AuditSource;
  policy: AuditPolicy;
  /** Which repository serves a namespace, for the answers; null when none can be told. */
  repositoryOf?: (namespace: string) => string | null;
  now?: () => number;
  /** Bound on the cluster reads of one request. */
  requestTimeoutMs: number;
  log: Logger;
};

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

export function createReadApiRoutes(deps: ReadApiDeps): Hono<{ Variables: { caller: ReadApiCaller } }> {
  const now = deps.now ?? Date.now;
  const { requestTimeoutMs } = deps;
  const app = new Hono<{ Variables: { caller: ReadApiCaller } }>();
  installErrorAnswers(app, deps.log);
  app.use("/v1/*", createBearerAuth({ verifier: deps.verifier, allowedServiceAccounts: deps.allowedServiceAccounts, log: deps.log }));

  app.get(`${backupsPathPrefix}/:namespace/:pvc`, async (c) => {
    const namespace = c.req.param("namespace");
    const pvcName = c.req.param("pvc");
    if (!DNS_LABEL.test(namespace) || !DNS_SUBDOMAIN.test(pvcName)) {
      return c.json({ error: "bad-request", message: `"${namespace}/${pvcName}" is not a namespace and PVC name.` }, 400);
    }
    let pvc: InventoryObject | undefined;
    let destination: InventoryObject | undefined;
    let clusterProblem: string | null = null;
    if (deps.audit) {
      const audit = deps.audit;
      const signal = AbortSignal.timeout(requestTimeoutMs);
      try {
        [pvc, destination] = await Promise.all([
          audit.pvc(namespace, pvcName, signal),
          audit.replicationDestination?.(namespace, generatedNames(pvcName).replicationDestination, signal),
        ]);
      } catch (error) {
        // The decision depends only on the name; the PVC's labels and its restore are extra context.
        clusterProblem = `the PVC or its ReplicationDestination could not be read: ${errorMessage(error)}`;
      }
    }
    const description = describeBackups(namespace, pvcName, pvc?.annotations, (identity) => deps.catalog.lookup(identity, now(), namespace));
    const { decision } = description;
    return c.json({
      namespace,
      pvc: pvcName,
      exists: deps.audit && clusterProblem === null ? pvc !== undefined : null,
      tier: pvc?.labels?.[BACKUP_LABEL] ?? null,
      identity: description.identity.key,
      repository: deps.repositoryOf?.(namespace) ?? null,
      decision: {
        answer: decision.answer,
        ...(decision.answer === "unknown" ? { reason: decision.reason } : {}),
        ...(decision.answer === "restore"
          ? { snapshot: decision.snapshot.id, snapshotTime: decision.snapshot.startTime, completeSnapshots: decision.completeSnapshots }
          : {}),
      },
      snapshots: description.snapshots.map((s) => ({ id: s.id, startTime: s.startTime, endTime: s.endTime, incomplete: s.incomplete })),
      // The snapshot the last restore pinned and its verdict (null while the mover runs); null
      // when pvc-guardian started no restore for this PVC or the cluster could not be read.
      restore: restoreStatusOf(destination?.annotations),
      catalogRefreshedAt: description.catalogRefreshedAt,
      ...(clusterProblem === null ? {} : { clusterProblem }),
    });
  });

  app.get(auditPath, async (c) => {
    if (!deps.audit) {
      return c.json({ error: "unavailable", message: "pvc-guardian runs without Kubernetes API access, so it cannot list PVCs for an audit." }, 503);
    }
    let inventory: AuditInventory;
    try {
      inventory = await deps.audit.inventory(AbortSignal.timeout(requestTimeoutMs));
    } catch (error) {
      return c.json({ error: "unavailable", message: `The cluster could not be listed completely, so no audit is given: ${errorMessage(error)}` }, 503);
    }
    const nowMs = now();
    return c.json(
      auditProtectedPvcs(inventory, deps.policy, (identity, namespace) => deps.catalog.lookup(identity, nowMs, namespace), nowMs, deps.repositoryOf),
    );
  });

  return app;
}
