// The last answer of every Hono app we serve. Hono's defaults write a plain-text 500 and print the
// error with console.error: a plain-text answer from a webhook hands the decision to the
// failurePolicy, and console.error puts whatever text the error carries (a caller's header
// included) raw on stderr. Here the error goes to the pino logger as an error (one JSON line,
// control characters escaped) and the caller gets JSON with a fixed sentence.

import type { Context, Hono } from "hono";
import type { Logger } from "../domain/logger.ts";

export type ErrorAnswer = (error: Error, c: Context<any>) => Response | Promise<Response>;

/**
 * Installs onError and notFound on `app`. `answer` may replace the JSON 500 (the admission routes
 * answer with an AdmissionReview); it must not throw.
 */
export function installErrorAnswers(app: Hono<any, any, any>, log: Logger, answer?: ErrorAnswer): void {
  app.onError((error, c) => {
    try {
      log.error({ err: error, method: c.req.method, path: c.req.path }, "request failed with an unhandled error");
    } catch {
      // The answer matters more than the log line.
    }
    if (answer !== undefined) return answer(error, c);
    return c.json({ error: "internal", message: "pvc-guardian could not answer this request; its logs say why." }, 500);
  });
  app.notFound((c) => c.json({ error: "not-found", message: "pvc-guardian serves nothing at this path." }, 404));
}
