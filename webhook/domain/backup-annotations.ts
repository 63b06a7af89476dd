import {
  ANNOTATION_RESTORE_AS_OF,
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
  /** The original text, passed to VolSync's `restoreAsOf` unchanged. */
  restoreAsOf?: string;
  restoreAsOfMs?: number;
  skipRestore: SkipRestore;
  /** Problems that make the requested restore point or skip ambiguous: these deny. */
  blockingProblems: string[];
  /** Problems that only lose a preference: these warn. */
  warnings: string[];
};

// RFC 3339 date-time, as the CRD's `format: date-time` requires; Date.parse alone accepts more.
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-](\d{2}):(\d{2}))$/;

/**
 * Milliseconds since the epoch, or NaN. Date.parse rolls impossible dates over (February 30 is
 * March 2, 24:00 is the next day), so the fields are range-checked first: the restore point must
 * be the one the user wrote, and the API server rejects such times on the RD anyway.
 */
function parseRfc3339Ms(text: string): number {
  const match = RFC3339.exec(text);
  if (!match) return Number.NaN;
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  const offsetHours = match[9] === undefined ? 0 : Number(match[9]);
  const offsetMinutes = match[10] === undefined ? 0 : Number(match[10]);
  const inRange =
    month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth && hour <= 23 && minute <= 59 && second <= 59 && offsetHours <= 23 && offsetMinutes <= 59;
  return inRange ? Date.parse(text) : Number.NaN;
}

export function readBackupAnnotations(annotations: Readonly<Record<string, string>> | undefined): BackupAnnotations {
  const read = (key: string): string | undefined => annotations?.[key];
  const result: BackupAnnotations = { skipRestore: { requested: false }, blockingProblems: [], warnings: [] };

  const schedule = read(ANNOTATION_SCHEDULE);
  if (schedule !== undefined) result.scheduleOverride = schedule;

  const restoreAsOf = read(ANNOTATION_RESTORE_AS_OF);
  if (restoreAsOf !== undefined) {
    const parsedMs = parseRfc3339Ms(restoreAsOf.trim());
    if (Number.isNaN(parsedMs)) {
      result.blockingProblems.push(
        `annotation ${ANNOTATION_RESTORE_AS_OF}="${restoreAsOf}" is not an RFC 3339 time such as 2026-11-20T00:00:00Z`,
      );
    } else {
      result.restoreAsOf = restoreAsOf.trim();
      result.restoreAsOfMs = parsedMs;
    }
  }

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
