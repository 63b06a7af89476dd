// The reconciler's metrics as plain counters a test can read: each increment is kept under the
// metric's name and its labels, and the leader gauge's last value.

import type { ReconcilerMetrics } from "../../webhook/reconciler/reconciler-metrics.ts";

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
