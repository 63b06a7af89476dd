import { parseRfc3339Ns } from "./rfc3339-time.ts";
import {
  ANNOTATION_RESTORE_AS_OF,
  ANNOTATION_RESTORE_FROM_IDENTITY,
  ANNOTATION_SCHEDULE,
  ANNOTATION_SKIP_RESTORE,
  ANNOTATION_SKIP_RESTORE_REASON,
} from "./wire-names.ts";

// The optional annotations a user may put on a protected PVC, read once into values with the
// problems they carry. Problems are not thrown: the caller decides which ones block (only those
// that change which data the volume starts with) and which ones become warnings.

export type SkipRestore =
  | { requested: false }
  | { requested: true; reason: string }
  /** `skip-restore: "true"` with no reason: the validator denies it. */
  | { requested: true; reason: undefined };

export type BackupAnnotations = {
  scheduleOverride?: string;
  /**
   * The text as written, for messages. Only the decision reads the time: VolSync's mover compares
   * its own restoreAsOf as text, so the RD is pinned to the chosen snapshot's start time instead.
   */
  restoreAsOf?: string;
  /** The restore point as a time (any RFC 3339 form), in nanoseconds since the epoch. */
  restoreAsOfNs?: bigint;
  /** `volsync.backup/restore-from-identity`, read but not yet checked against the PVC's namespace. */
  restoreFromIdentity?: string;
  skipRestore: SkipRestore;
  /** Problems that make the requested restore point or skip ambiguous: these deny. */
  blockingProblems: string[];
  /** Problems that only lose a preference: these warn. */
  warnings: string[];
};

export function readBackupAnnotations(annotations: Readonly<Record<string, string>> | undefined): BackupAnnotations {
  const read = (key: string): string | undefined => annotations?.[key];
  const result: BackupAnnotations = { skipRestore: { requested: false }, blockingProblems: [], warnings: [] };

  const schedule = read(ANNOTATION_SCHEDULE);
  if (schedule !== undefined) result.scheduleOverride = schedule;

  const restoreAsOf = read(ANNOTATION_RESTORE_AS_OF);
  if (restoreAsOf !== undefined) {
    const parsedNs = parseRfc3339Ns(restoreAsOf.trim());
    if (parsedNs === undefined) {
      result.blockingProblems.push(`annotation ${ANNOTATION_RESTORE_AS_OF}="${restoreAsOf}" is not an RFC 3339 time such as 2026-11-20T00:00:00Z`);
    } else {
      result.restoreAsOf = restoreAsOf.trim();
      result.restoreAsOfNs = parsedNs;
    }
  }

  const restoreFrom = read(ANNOTATION_RESTORE_FROM_IDENTITY)?.trim();
  if (restoreFrom !== undefined && restoreFrom !== "") result.restoreFromIdentity = restoreFrom;

  const skip = read(ANNOTATION_SKIP_RESTORE);
  const reason = read(ANNOTATION_SKIP_RESTORE_REASON)?.trim();
  if (skip === "true") {
    result.skipRestore = reason ? { requested: true, reason } : { requested: true, reason: undefined };
  } else if (skip !== undefined && skip !== "false") {
    result.warnings.push(
      `annotation ${ANNOTATION_SKIP_RESTORE}="${skip}" is neither "true" nor "false"; it is ignored and the PVC is restored when a backup exists`,
    );
  }
  return result;
}
