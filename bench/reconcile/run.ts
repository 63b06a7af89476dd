// Reconcile and sweep passes against a real kube-apiserver with VolSync's CRDs: 100 protected
// PVCs, then 1,000, each with its Secret, ReplicationDestination and ReplicationSource. Prints
// the wall time of each pass and the API requests it made, by verb.
//
//   ./node_modules/.bin/node bench/reconcile/run.ts [--sizes 100,1000] [--page-size 500]
//     [--write-concurrency N] [--shipped-delay]
//
// --shipped-delay keeps the shipped first-backup delay (2 h): the first pass over an existing
// cluster then writes each PVC's Secret and ReplicationDestination and no ReplicationSource yet,
// as it does in production. Without it the delay is 0 and the same pass writes all three.

import { parseArgs } from "node:util";
import { startTestCluster } from "../../test/harness/cluster.ts";
import { installCrds } from "../../test/harness/crds.ts";
import { createNamespace, setPvcPhase } from "../../test/harness/kube-objects.ts";
import { createKubeClients } from "../../webhook/kube/kube-client.ts";
import { PERSISTENT_VOLUME_CLAIMS } from "../../webhook/kube/kube-objects.ts";
import { DEFAULT_POLICY } from "../../webhook/domain/policy.ts";
import { createReconciler } from "../../webhook/reconciler/reconciler.ts";
import { createSweeper } from "../../webhook/reconciler/sweeper.ts";
import type { Logger } from "../../webhook/domain/logger.ts";
import { createNoopReconcilerMetrics } from "../../webhook/reconciler/reconciler-metrics.ts";
import { forEachConcurrently } from "../../webhook/domain/bounded-concurrency.ts";
import { kubeClientSettings, reconcilerSettings, sweeperSettings } from "../../test/support/default-settings.ts";

const { values } = parseArgs({
  options: {
    sizes: { type: "string", default: "100,1000" },
    "page-size": { type: "string", default: String(reconcilerSettings.pageSize) },
    "write-concurrency": { type: "string", default: String(reconcilerSettings.writeConcurrency) },
    "shipped-delay": { type: "boolean", default: false },
  },
});
const writeConcurrency = Number(values["write-concurrency"]);
const sizes = values.sizes.split(",").map(Number);
const pageSize = Number(values["page-size"]);

const quiet = () => {};
const log: Logger = {
  debug: quiet,
  info: quiet,
  warn: (fields, message) => console.error("warn", message, fields),
  error: (fields, message) => console.error("error", message, fields),
  child: () => log,
};
const byVerb = new Map<string, number>();
let total = 0;

const cluster = await startTestCluster();
try {
  await installCrds(cluster, { certManager: false });
  const kube = createKubeClients({
    ...kubeClientSettings,
    kubeconfigPath: cluster.kubeconfigPath,
    listPageSize: pageSize,
    onRequest: (record) => {
      total++;
      byVerb.set(record.verb, (byVerb.get(record.verb) ?? 0) + 1);
    },
  });
  const system = await createNamespace(cluster);
  await kube.objects.create({
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: "kopia-credentials", namespace: system },
    data: { KOPIA_PASSWORD: "cA==", KOPIA_REPOSITORY: "cg==" },
  });
  const policy = {
    ...DEFAULT_POLICY,
    firstBackupDelayMs: values["shipped-delay"] ? DEFAULT_POLICY.firstBackupDelayMs : 0,
    sourceSecret: { namespace: system, name: "kopia-credentials" },
    excludedNamespaces: [system],
  };
  const metrics = createNoopReconcilerMetrics();
  const reconciler = createReconciler({ ...reconcilerSettings, objects: kube.objects, policy, log, metrics, pageSize, writeConcurrency });
  const sweeper = createSweeper({ ...sweeperSettings, objects: kube.objects, policy, log, metrics, namespace: system, gracePeriodMs: 0, pageSize });
  const namespace = await createNamespace(cluster);

  async function measure<T>(label: string, pass: () => Promise<T>, summary: (result: T) => string): Promise<void> {
    byVerb.clear();
    const before = total;
    const started = performance.now();
    const result = await pass();
    const ms = performance.now() - started;
    const verbs = [...byVerb].map(([verb, count]) => `${verb} ${count}`).join(", ");
    console.log(`${label.padEnd(44)} ${ms.toFixed(0).padStart(6)} ms  ${String(total - before).padStart(5)} requests (${verbs})  ${summary(result)}`);
  }

  let existing = 0;
  console.log(`page size ${pageSize}; write concurrency ${writeConcurrency}; kube-apiserver ${cluster.server}`);
  for (const size of sizes) {
    const names = Array.from({ length: size - existing }, (_, index) => `data-${existing + index}`);
    await forEachConcurrently(names, 16, async (name) => {
      await kube.objects.create({
        apiVersion: "v1",
        kind: "PersistentVolumeClaim",
        metadata: { name, namespace, labels: { backup: "hourly" } },
        spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } },
      });
      await setPvcPhase(cluster, namespace, name, "Bound");
    });
    existing = size;
    console.log(`\n${size} protected PVCs (Bound)`);
    const report = (r: { created: number; repaired: number; outcome: string }) => `outcome ${r.outcome}, created ${r.created}, repaired ${r.repaired}`;
    await measure("reconcile: create the missing objects", () => reconciler.runPass(), report);
    await measure("reconcile: steady state (nothing differs)", () => reconciler.runPass(), report);
    await measure("reconcile: steady state again", () => reconciler.runPass(), report);
    // Ten PVCs change tier: the pass writes exactly ten ReplicationSources.
    await forEachConcurrently(names.slice(0, 10), 10, async (name) => {
      const pvc = await kube.objects.get(PERSISTENT_VOLUME_CLAIMS, namespace, name);
      await kube.objects.replace({ ...pvc!, metadata: { ...pvc!.metadata, labels: { backup: "daily" } } });
    });
    await measure("reconcile: 10 PVCs changed tier", () => reconciler.runPass(), report);
    const sweepReport = (r: { outcome: string; managedObjects: number; deleted: number }) =>
      `outcome ${r.outcome}, managed ${r.managedObjects}, deleted ${r.deleted}`;
    await measure("sweep: nothing orphaned", () => sweeper.runPass(), sweepReport);
    await measure("sweep: nothing orphaned, again", () => sweeper.runPass(), sweepReport);
  }
  kube.close();
} finally {
  await cluster.stop();
}
