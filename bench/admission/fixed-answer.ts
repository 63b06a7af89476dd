// The fixed AdmissionReview the bare and listener children answer with, after reading the body:
// no parsing, decision or logging, so what they cost is the transport alone.

import { Hono, type Context } from "hono";

const fixed = {
  apiVersion: "admission.k8s.io/v1",
  kind: "AdmissionReview",
  response: { uid: "00000000-0000-0000-0000-000000000000", allowed: true },
};

export function createFixedAnswerApp(): Hono {
  const app = new Hono();
  const answer = async (c: Context) => {
    await c.req.text();
    return c.json(fixed);
  };
  app.post("/mutate-v1-pvc", answer);
  app.post("/validate-v1-pvc", answer);
  return app;
}
