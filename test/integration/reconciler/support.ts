// Shared set-up for the reconciler's integration tests: one real cluster with VolSync's CRDs per
// test file, the real adapter pointed at it, and the small facts tests need (a source Secret,
// PVCs, evaluations as the admission path makes them).

import { startTestCluster, type TestCluster } from "../../harness/cluster.ts";
import { installCrds } from "../../harness/crds.ts";
import { createNamespace } from "../../harness/kube-objects.ts";
import { createKubeClients, type KubeClients } from "../../../webhook/kube/kube-client.ts";
import type { KubeObject, KubeObjects } from "../../../webhook/kube/kube-objects.ts";
import { DEFAULT_POLICY, type Policy } from "../../../webhook/domain/policy.ts";
import { evaluatePvc } from "../../../webhook/domain/pvc-admission.ts";
import type { PersistentVolumeClaim } from "../../../webhook/domain/pvc.ts";
import type { ProtectedEvaluation } from "../../../webhook/admission/generation-port.ts";
import { snapshotRecord, type SnapshotRecord } from "../../../webhook/domain/snapshot-catalog.ts";
import type { ReconcilerMetrics } from "../../../webhook/reconciler/reconciler-metrics.ts";
import { createRecordingLogger, type RecordingLogger } from "../../support/recording-logger.ts";
import { kubeClientSettings } from "../../support/default-settings.ts";

export type Environment = {
  cluster: TestCluster;
  kube: KubeClients;
  /** Requests the adapter made so far. */
  requests: () => number;
  systemNamespace: string;
  policy: Policy;
  stop(): Promise<void>;
};

export const SOURCE_DATA = {
  KOPIA_PASSWORD: Buffer.from("correct horse").toString("base64"),
  KOPIA_REPOSITORY: Buffer.from("filesystem:///repo").toString("base64"),
};

export async function startEnvironment(): Promise<Environment> {
  const cluster = await startTestCluster();
  try {
    await installCrds(cluster, { certManager: false });
    let count = 0;
    const kube = createKubeClients({ ...kubeClientSettings, kubeconfigPath: cluster.kubeconfigPath, onRequest: () => void count++ });
    const systemNamespace = await createNamespace(cluster);
    const policy: Policy = {
      ...DEFAULT_POLICY,
      sourceSecret: { namespace: systemNamespace, name: "kopia-credentials" },
      excludedNamespaces: ["kube-system", systemNamespace],
    };
    await kube.objects.create({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "kopia-credentials", namespace: systemNamespace },
      type: "Opaque",
      data: SOURCE_DATA,
    });
    return {
      cluster,
      kube,
      requests: () => count,
      systemNamespace,
      policy,
      async stop() {
        kube.close();
        await cluster.stop();
      },
    };
  } catch (error) {
    await cluster.stop();
    throw error;
  }
}

export function pvcObject(
  namespace: string,
  name: string,
  labels: Record<string, string> = { backup: "hourly" },
  annotations?: Record<string, string>,
): KubeObject & PersistentVolumeClaim {
  return {
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: { name, namespace, labels, ...(annotations ? { annotations } : {}) },
    spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } },
  } as KubeObject & PersistentVolumeClaim;
}

export const SNAPSHOT: SnapshotRecord = snapshotRecord({
  id: "k0123456789abcdef",
  startTime: "2026-11-20T00:00:00.123456789Z",
  endTime: "2026-11-20T00:01:00Z",
  incomplete: false,
  stats: { totalSize: 1024, fileCount: 3, dirCount: 2 },
  summary: { files: 3, symlinks: 0, dirs: 2, size: 1024 },
})!;

/** The evaluation the admission path makes, with the catalog answering restore or fresh. */
export function evaluate(pvc: PersistentVolumeClaim, policy: Policy, answer: "restore" | "fresh"): ProtectedEvaluation {
  const evaluation = evaluatePvc(pvc, { operation: "CREATE", name: pvc.metadata!.name, namespace: pvc.metadata!.namespace! }, policy, () => ({
    readable: true,
    snapshots: answer === "restore" ? [SNAPSHOT] : [],
    refreshedAtMs: Date.now(),
  }));
  if (evaluation.scope !== "protected") throw new Error(`expected a protected evaluation, got ${evaluation.scope}`);
  return evaluation;
}

export type RecordedLog = RecordingLogger & { lines: RecordingLogger["entries"] };

export function recordingLog(): RecordedLog {
  const logger = createRecordingLogger();
  return { ...logger, lines: logger.entries };
}

export type CountingMetrics = ReconcilerMetrics & { counts: Map<string, number>; leaderValue: () => number };

export function countingMetrics(): CountingMetrics {
  const counts = new Map<string, number>();
  let leader = 0;
  const counter = (name: string) => ({
    inc(labels: Record<string, string>, value = 1) {
      const key = `${name}${JSON.stringify(labels)}`;
      counts.set(key, (counts.get(key) ?? 0) + value);
    },
  });
  return {
    counts,
    leaderValue: () => leader,
    reconcilePasses: counter("reconcile_passes"),
    reconcileDuration: { observe: () => {} },
    sweepPasses: counter("sweep_passes"),
    objectsCreated: counter("objects_created"),
    objectsRepaired: counter("objects_repaired"),
    objectsDeleted: counter("objects_deleted"),
    restoreVerifications: counter("restore_verifications"),
    leader: { set: (_labels: Record<string, string>, value: number) => void (leader = value) },
  };
}

/** A KubeObjects that fails chosen verbs for chosen kinds, delegating everything else. */
export function failingObjects(inner: KubeObjects, fails: (verb: string, kind: string) => boolean): KubeObjects {
  const refuse = (verb: string, kind: string) => {
    if (fails(verb, kind)) throw Object.assign(new Error(`injected failure: ${verb} ${kind}`), { status: 403 });
  };
  return {
    get: async (kind, ns, name, signal) => (refuse("get", kind.kind), inner.get(kind, ns, name, signal)),
    list: async (kind, options, signal) => (refuse("list", kind.kind), inner.list(kind, options, signal)),
    create: async (object, signal) => (refuse("create", object.kind), inner.create(object, signal)),
    replace: async (object, signal) => (refuse("replace", object.kind), inner.replace(object, signal)),
    apply: async (object, options, signal) => (refuse("apply", object.kind), inner.apply(object, options, signal)),
    delete: async (kind, ns, name, pre, signal) => (refuse("delete", kind.kind), inner.delete(kind, ns, name, pre, signal)),
    watch: (kind, options, onEvent, signal) => inner.watch(kind, options, onEvent, signal),
  };
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 10_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
