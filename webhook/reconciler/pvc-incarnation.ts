// Whether a live ReplicationSource was made for an earlier PVC of the same name. A PVC deleted
// and recreated within the sweeper's grace period keeps its name, so the old RS (same sourcePVC)
// would go on backing up the new, empty or half-restored volume on schedule, and that snapshot
// would become the newest one a disaster restore picks. Product rule 3.3 says an RS exists only
// once *this* PVC has been Bound for the first-backup delay, so an RS that provably predates this
// PVC must go, and the delay starts again for the new uid.
//
// Two pieces of evidence, either one enough:
// - our ReplicationDestination records the uid of the PVC whose Bound phase started the delay
//   (bound-observation.ts), and the RS is only ever created after that; another uid there means
//   the RS was scheduled for another PVC;
// - the RS was created before this PVC was (both times come from the API server; an RS made for
//   this PVC comes after it). This one still holds when the RD lost its annotations.

export type IncarnationFacts = {
  pvc: { uid: string | undefined; creationTimestamp: string | undefined };
  /** The PVC uid recorded with the bound observation on our ReplicationDestination, if any. */
  recordedPvcUid: string | undefined;
  source: { creationTimestamp: string | undefined };
};

/** Why the ReplicationSource belongs to an earlier PVC of the same name, or undefined when nothing shows that. */
export function detectEarlierIncarnation(facts: IncarnationFacts): string | undefined {
  const { pvc, recordedPvcUid, source } = facts;
  if (pvc.uid !== undefined && recordedPvcUid !== undefined && recordedPvcUid !== pvc.uid) {
    return `the ReplicationDestination records PVC uid ${recordedPvcUid}, the live PVC is ${pvc.uid}`;
  }
  const pvcCreatedMs = Date.parse(pvc.creationTimestamp ?? "");
  const sourceCreatedMs = Date.parse(source.creationTimestamp ?? "");
  // Creation times have whole-second precision: only a strictly earlier second proves anything.
  if (Number.isFinite(pvcCreatedMs) && Number.isFinite(sourceCreatedMs) && sourceCreatedMs < pvcCreatedMs) {
    return `the ReplicationSource was created at ${source.creationTimestamp}, before the PVC at ${pvc.creationTimestamp}`;
  }
  return undefined;
}
