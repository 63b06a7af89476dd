// The evaluation the admission path makes of a protected PVC, with the catalog answering
// restore (one complete snapshot) or fresh (none): what the admission generator is handed.

import type { Policy } from "../../webhook/domain/policy.ts";
import { evaluatePvc } from "../../webhook/domain/pvc-admission.ts";
import type { PersistentVolumeClaim } from "../../webhook/domain/pvc.ts";
import type { ProtectedEvaluation } from "../../webhook/admission/generation-port.ts";
import { snapshotRecord, type SnapshotRecord } from "../../webhook/domain/snapshot-catalog.ts";

/** The one snapshot the catalog holds when it answers restore. */
export const SNAPSHOT: SnapshotRecord = snapshotRecord({
  id: "k0123456789abcdef",
  startTime: "2026-11-20T00:00:00.123456789Z",
  endTime: "2026-11-20T00:01:00Z",
  incomplete: false,
  stats: { totalSize: 1024, fileCount: 3, dirCount: 2 },
  summary: { files: 3, symlinks: 0, dirs: 2, size: 1024 },
})!;

export function protectedEvaluation(pvc: PersistentVolumeClaim, policy: Policy, answer: "restore" | "fresh"): ProtectedEvaluation {
  const evaluation = evaluatePvc(pvc, { operation: "CREATE", name: pvc.metadata!.name, namespace: pvc.metadata!.namespace! }, policy, () => ({
    readable: true,
    snapshots: answer === "restore" ? [SNAPSHOT] : [],
    refreshedAtMs: Date.now(),
  }));
  if (evaluation.scope !== "protected") throw new Error(`expected a protected evaluation, got ${evaluation.scope}`);
  return evaluation;
}
