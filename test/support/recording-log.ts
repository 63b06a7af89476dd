// Logs for tests: one that keeps every line so a test can assert on what was logged, and one that
// drops everything. Both fit the transport's Logger and the reconciler's Log (the same shape).

import type { Logger } from "../../webhook/server/logger.ts";

export type LogEntry = { level: string; fields: Record<string, unknown>; message?: string };

export type RecordingLog = Logger & { entries: LogEntry[] };

export function recordingLog(): RecordingLog {
  const entries: LogEntry[] = [];
  const at = (level: string) => (fields: object, message?: string) =>
    void entries.push({ level, fields: fields as Record<string, unknown>, ...(message === undefined ? {} : { message }) });
  return { entries, debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

const ignore = () => {};

export const silentLog: Logger = { debug: ignore, info: ignore, warn: ignore, error: ignore };
