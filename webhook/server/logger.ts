// The logging port of the transport layer. pino's Logger satisfies it structurally; tests pass a
// recorder. Kept this narrow so nothing here depends on how logs are shipped.

export type LogFn = (fields: object, message?: string) => void;

export type Logger = {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
};
