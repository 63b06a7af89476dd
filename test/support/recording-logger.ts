// Loggers for tests, of the one Logger type (webhook/domain/logger.ts). The recorder keeps each line
// with its level, fields and message; a child's lines land in the same list with the child's
// bindings merged into their fields, as pino writes them.

import type { LogFields, Logger } from "../../webhook/domain/logger.ts";

export type LogEntry = { level: string; fields: Record<string, unknown>; message?: string };

export type RecordingLogger = Logger & { entries: LogEntry[] };

export function createRecordingLogger(): RecordingLogger {
  const entries: LogEntry[] = [];
  const bound = (bindings: LogFields): Logger => {
    const at = (level: string) => (fields: LogFields, message?: string) =>
      void entries.push({ level, fields: { ...bindings, ...fields }, ...(message === undefined ? {} : { message }) });
    return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error"), child: (more) => bound({ ...bindings, ...more }) };
  };
  return { entries, ...bound({}) };
}

/** Drops every line. */
export function createSilentLogger(): Logger {
  const ignore = () => {};
  const logger: Logger = { debug: ignore, info: ignore, warn: ignore, error: ignore, child: () => logger };
  return logger;
}
