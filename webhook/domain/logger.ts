// The logging port every layer receives. pino's Logger satisfies it structurally (main.ts makes the
// process's one logger); tests pass a recorder. Types only: domain/ itself never logs, it only
// names the port, so that kopia/, kube/, reconciler/, server/ and admission/ can all take it
// without importing each other.
//
// The fields mean the same thing on every line:
//   err          the thrown value itself, never its message: pino's err serializer keeps the
//                type, the message and the stack
//   namespace, name, kind
//                the object the line is about
//   pvc          the PVC a generated object belongs to (its name; same namespace)
//   controller   the background part that wrote the line: reconciler, sweeper, leader-election,
//                restore-verifier, catalog, ...
//   reconcileId  the same on every line of one reconcile or sweep pass
//   repository   the policy's name for a Kopia repository (`default` for the top-level one)

export type LogFields = Record<string, unknown>;

export type LogFn = (fields: LogFields, message?: string) => void;

export type Logger = {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  /** A logger whose every line also carries `bindings` (a pino child logger). */
  child(bindings: LogFields): Logger;
};
