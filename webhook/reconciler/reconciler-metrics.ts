// The metrics port of the reconciler, sweeper, leader election and admission generator: the small
// shape they need (generation failures are counted by the admission handler's hook). This is the
// one type for it: server/metrics.ts implements it with prom-client's Counter and Gauge, which
// satisfy it structurally, and owns the metric names:
//   pvc_guardian_reconcile_passes_total{outcome="ok|partial|error"}
//   pvc_guardian_reconcile_duration_seconds (histogram, one observation per reconcile pass)
//   pvc_guardian_sweep_passes_total{outcome="ok|partial|error|held|dry-run"}
//   pvc_guardian_objects_created_total{kind="Secret|ReplicationDestination|ReplicationSource"}
//   pvc_guardian_objects_repaired_total{kind=...}
//   pvc_guardian_objects_deleted_total{kind=...}
//   pvc_guardian_restore_verifications_total{verdict="verified|mismatch|empty|failed|unverified"}
//   pvc_guardian_leader{name="<lease name>"} (gauge, 1 while this replica holds that Lease)

export type CounterPort = { inc(labels: Record<string, string>, value?: number): void };
export type GaugePort = { set(labels: Record<string, string>, value: number): void };
export type HistogramPort = { observe(value: number): void };

export type ReconcilerMetrics = {
  reconcilePasses: CounterPort;
  /** Seconds per reconcile pass, whatever its outcome. */
  reconcileDuration: HistogramPort;
  sweepPasses: CounterPort;
  objectsCreated: CounterPort;
  objectsRepaired: CounterPort;
  objectsDeleted: CounterPort;
  restoreVerifications: CounterPort;
  /** Labelled `name`: the Lease's name. */
  leader: GaugePort;
};

export function createNoopReconcilerMetrics(): ReconcilerMetrics {
  const counter: CounterPort = { inc: () => {} };
  return {
    reconcilePasses: counter,
    reconcileDuration: { observe: () => {} },
    sweepPasses: counter,
    objectsCreated: counter,
    objectsRepaired: counter,
    objectsDeleted: counter,
    restoreVerifications: counter,
    leader: { set: () => {} },
  };
}
