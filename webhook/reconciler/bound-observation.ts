// When a PVC became Bound, as far as pvc-guardian can prove it. A PVC does not record when it was
// bound (status has no lastTransitionTime for the phase), and timers in memory do not survive a
// restart. So the reconciler records its first observation of the Bound phase on the PVC's own
// ReplicationDestination, which we already own and write, and never on the PVC (we do not write
// users' objects). The observation can only be later than the real bind, never earlier, so the
// first-backup delay is only ever longer than configured: the safe direction, since a backup
// taken too early writes an empty or half-restored volume over good history. The PVC's uid is
// recorded with it: a PVC deleted and recreated under the same name starts a new clock.

import { ANNOTATION_BOUND_OBSERVED_AT, ANNOTATION_BOUND_PVC_UID } from "../domain/wire-names.ts";

export type BoundObservation = { observedAtMs: number; annotations: Record<string, string> };

/**
 * The observation to keep on the ReplicationDestination: the recorded one when it is for this
 * PVC, a new one at `nowMs` when the PVC is Bound and nothing valid is recorded, none otherwise.
 */
export function observeBound(
  pvc: { uid: string | undefined; phase: string | undefined },
  recorded: Readonly<Record<string, string>> | undefined,
  nowMs: number,
): BoundObservation | undefined {
  if (pvc.phase !== "Bound" || pvc.uid === undefined) return undefined;
  const recordedAt = recorded?.[ANNOTATION_BOUND_OBSERVED_AT];
  const recordedMs = recordedAt === undefined ? Number.NaN : Date.parse(recordedAt);
  // A time in the future is no proof of anything; start again from now.
  const isValid = recorded?.[ANNOTATION_BOUND_PVC_UID] === pvc.uid && Number.isFinite(recordedMs) && recordedMs <= nowMs;
  const observedAtMs = isValid ? recordedMs : nowMs;
  return {
    observedAtMs,
    annotations: {
      [ANNOTATION_BOUND_OBSERVED_AT]: isValid ? recordedAt! : new Date(nowMs).toISOString(),
      [ANNOTATION_BOUND_PVC_UID]: pvc.uid,
    },
  };
}
