import { CronExpressionParser } from "cron-parser";
import { stableBucket } from "./resource-names.ts";
import { errorMessage } from "./error-message.ts";

// Schedules as VolSync accepts them. Its CRD only takes five numeric fields (or an @descriptor),
// so `H` (a stable per-PVC minute, so fifty PVCs do not all start at :00) is expanded here into
// plain numbers before anything reaches the API server.

/** The pattern of `spec.trigger.schedule` in VolSync's ReplicationSource CRD. */
const VOLSYNC_SCHEDULE_PATTERN = /^(@(annually|yearly|monthly|weekly|daily|hourly))|((((\d+,)*\d+|(\d+(\/|-)\d+)|\*(\/\d+)?)\s?){5})$/;

// The CRD pattern's descriptor branch is only anchored at the start, so "@daily extra" passes it
// and then fails in VolSync's cron parser: a descriptor must be the whole schedule.
const DESCRIPTOR = /^@(annually|yearly|monthly|weekly|daily|hourly)$/;

export type ScheduleResult = { ok: true; schedule: string } | { ok: false; problem: string };

function expandHashedMinute(minuteField: string, hashKey: string): string | undefined {
  if (minuteField === "H") return String(stableBucket(hashKey, 60));
  const stepMatch = /^H\/(\d+)$/.exec(minuteField);
  if (!stepMatch) return undefined;
  const step = Number(stepMatch[1]);
  if (step < 1 || step > 60) return undefined;
  const minutes: number[] = [];
  for (let minute = stableBucket(hashKey, step); minute < 60; minute += step) minutes.push(minute);
  return minutes.join(",");
}

/**
 * Validates a schedule template and resolves `H` / `H/N` in the minute field for one PVC.
 * `hashKey` is `namespace/pvc`, so the minute is stable across restarts and replicas.
 */
export function resolveSchedule(template: string, hashKey: string): ScheduleResult {
  // Admission resolves the same few templates for the same PVCs over and over; cron parsing is
  // the one costly step on that path, so results are remembered (bounded, pure either way).
  const cacheKey = `${template}\u0000${hashKey}`;
  const cached = resolvedSchedules.get(cacheKey);
  if (cached) return cached;
  const result = resolveScheduleUncached(template, hashKey);
  if (resolvedSchedules.size >= MAX_CACHED_SCHEDULES) resolvedSchedules.clear();
  resolvedSchedules.set(cacheKey, result);
  return result;
}

const MAX_CACHED_SCHEDULES = 10_000;
const resolvedSchedules = new Map<string, ScheduleResult>();

function resolveScheduleUncached(template: string, hashKey: string): ScheduleResult {
  const trimmed = template.trim();
  if (trimmed.startsWith("@")) {
    return DESCRIPTOR.test(trimmed) && VOLSYNC_SCHEDULE_PATTERN.test(trimmed)
      ? { ok: true, schedule: trimmed }
      : { ok: false, problem: `"${template}" is not a descriptor VolSync accepts (@hourly, @daily, @weekly, @monthly, @yearly)` };
  }
  const fields = trimmed.split(/\s+/);
  if (fields.length !== 5) {
    return { ok: false, problem: `"${template}" has ${fields.length} fields; a schedule needs 5 (minute hour day month weekday)` };
  }
  const minute = fields[0]!;
  if (minute.includes("H")) {
    const expanded = expandHashedMinute(minute, hashKey);
    if (expanded === undefined) {
      return { ok: false, problem: `"${template}": H is only allowed as the whole minute field, as H or H/N with N from 1 to 60` };
    }
    fields[0] = expanded;
  }
  const schedule = fields.join(" ");
  if (!VOLSYNC_SCHEDULE_PATTERN.test(schedule)) {
    return { ok: false, problem: `"${template}" uses syntax VolSync's CRD rejects; use numbers, lists, ranges, or */N in each field` };
  }
  try {
    CronExpressionParser.parse(schedule, { tz: "UTC" });
  } catch (error) {
    return { ok: false, problem: `"${template}": ${errorMessage(error)}` };
  }
  return { ok: true, schedule };
}

/** Whether a schedule template is valid regardless of which PVC it is resolved for. */
export function checkScheduleTemplate(template: string): string | undefined {
  const result = resolveSchedule(template, "validation/probe");
  return result.ok ? undefined : result.problem;
}

/** The time between two consecutive runs of a schedule after `fromMs`; undefined when unparseable. */
export function scheduleIntervalMs(schedule: string, fromMs: number): number | undefined {
  try {
    const expression = CronExpressionParser.parse(schedule, { tz: "UTC", currentDate: new Date(fromMs) });
    const first = expression.next().getTime();
    const second = expression.next().getTime();
    return second - first;
  } catch {
    return undefined;
  }
}
