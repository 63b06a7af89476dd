// One pvc-guardian replica's background controllers in a process of its own, for the leader
// election test: it reads its settings from argv as JSON, reports leadership changes and writes
// as JSON lines on stdout, and stops cleanly on SIGTERM (releasing the lease). SIGKILL is the
// crash the test is about.

import { createKubeClients } from "../../../webhook/kube/kube-client.ts";
import { createBackgroundControllers } from "../../../webhook/reconciler/background-controllers.ts";
import { DEFAULT_POLICY } from "../../../webhook/domain/policy.ts";
import type { LogFields, Logger } from "../../../webhook/domain/logger.ts";
import { LEADER_LEASE_NAME } from "../../../webhook/domain/wire-names.ts";
import { createNoopReconcilerMetrics } from "../../../webhook/reconciler/reconciler-metrics.ts";
import { renewDeadlineFor } from "../../../webhook/config.ts";
import { kubeClientSettings, defaultSettings } from "../../support/default-settings.ts";

type Settings = { kubeconfigPath: string; namespace: string; identity: string; leaseDurationMs: number; retryPeriodMs: number };

const settings = JSON.parse(process.argv[2] ?? "{}") as Settings;
const say = (fields: object) => process.stdout.write(`${JSON.stringify({ identity: settings.identity, atMs: Date.now(), ...fields })}\n`);
let writes = 0;
const kube = createKubeClients({
  ...kubeClientSettings,
  kubeconfigPath: settings.kubeconfigPath,
  onRequest: (record) => {
    const isWrite = record.verb === "create" || record.verb === "update" || record.verb === "patch" || record.verb === "delete";
    if (isWrite && !record.path.includes("/leases") && !record.path.includes("/events")) writes++;
  },
});
const quiet = () => {};
const logWith = (bindings: LogFields): Logger => ({
  debug: quiet,
  info: (fields, message) => {
    if (message === "generated object created") say({ created: { ...bindings, ...fields } });
  },
  warn: quiet,
  error: (fields, message) => say({ error: message, fields: { ...bindings, ...fields } }),
  child: (more) => logWith({ ...bindings, ...more }),
});
const log = logWith({});
const metrics = { ...createNoopReconcilerMetrics(), leader: { set: (_labels: Record<string, string>, value: number) => say({ leader: value === 1, writes }) } };
const controllers = createBackgroundControllers({
  objects: kube.objects,
  policy: {
    ...DEFAULT_POLICY,
    firstBackupDelayMs: 0,
    sourceSecret: { namespace: settings.namespace, name: "kopia-credentials" },
    excludedNamespaces: [settings.namespace],
  },
  log,
  metrics,
  namespace: settings.namespace,
  identity: settings.identity,
  leaseName: LEADER_LEASE_NAME,
  reconcile: {
    ...defaultSettings.reconcile,
    intervalMs: 500,
    watchDebounceMs: 100,
    leaseDurationMs: settings.leaseDurationMs,
    renewDeadlineMs: renewDeadlineFor(settings.leaseDurationMs),
    retryPeriodMs: settings.retryPeriodMs,
  },
  sweep: defaultSettings.sweep,
  listPageSize: defaultSettings.kubernetes.listPageSize,
  watchPvcs: true,
  watchReplicationDestinations: true,
});
controllers.start();
say({ started: true });
process.once("SIGTERM", () => {
  void controllers.stop().then(() => {
    say({ stopped: true, writes });
    kube.close();
    process.exit(0);
  });
});
