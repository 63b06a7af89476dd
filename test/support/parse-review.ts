// The AdmissionReview a webhook answered with, read from the HTTP body: it must be one, whatever
// the request was.

import assert from "node:assert/strict";
import type { AdmissionReviewOut } from "../../webhook/admission/admission-review.ts";

export function parseReview(text: string): AdmissionReviewOut {
  const parsed = JSON.parse(text) as AdmissionReviewOut;
  assert.equal(parsed.kind, "AdmissionReview", text.slice(0, 200));
  return parsed;
}
