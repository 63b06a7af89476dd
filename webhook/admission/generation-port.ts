import type { PvcEvaluation } from "../domain/pvc-admission.ts";
import type { PersistentVolumeClaim } from "../domain/pvc.ts";

// The port through which the validating webhook creates a protected PVC's Secret and
// ReplicationDestination once it has decided to allow it (README, "How the pieces fit"). The Kubernetes-backed
// implementation lives with the reconciler; the admission handler only knows this shape.

export type ProtectedEvaluation = Extract<PvcEvaluation, { scope: "protected" }>;

export type GenerationRequest = {
  pvc: PersistentVolumeClaim;
  evaluation: ProtectedEvaluation;
  /**
   * True when the PVC will be populated from the ReplicationDestination: the decision is
   * `restore` and no valid skip-restore was given. Then the RD is active (restore-once, stale
   * image replaced) and a failed write denies; otherwise the RD is created paused and a failed
   * write only warns.
   */
  restoring: boolean;
};

export type GenerationResult =
  | { ok: true; warnings: string[] }
  /**
   * `message` is a clause naming what could not be written and why, e.g. "the restore objects
   * for PVC media/app could not be written (…)"; the handler puts it into its full sentence.
   */
  | { ok: false; message: string };

export interface BackupObjectGenerator {
  /**
   * Creates or repairs the Secret and ReplicationDestination, replacing a stale RD that already
   * restored an earlier image when the decision is `restore`. Must finish or give up when
   * `signal` aborts; never throws for expected failures.
   */
  generate(request: GenerationRequest, signal: AbortSignal): Promise<GenerationResult>;
}
