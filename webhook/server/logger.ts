// The logging port under the name admission-routes.ts imports; the type is domain/logger.ts's.
export type { Logger, LogFn } from "../domain/logger.ts";
