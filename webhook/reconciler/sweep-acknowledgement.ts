// How an operator releases a sweep held by the mass-deletion breaker, with nothing but kubectl or
// a GitOps commit: a ConfigMap in pvc-guardian's namespace that says how many deletions are
// acknowledged, until when. It is read only when the breaker trips; pvc-guardian never writes or
// deletes it (GitOps would fight that), so the expiry is what ends it. See README.md here.

import {
  SWEEP_ACKNOWLEDGEMENT_EXPIRES_AT_KEY as ACK_EXPIRES_AT_KEY,
  SWEEP_ACKNOWLEDGEMENT_MAX_DELETIONS_KEY as ACK_MAX_DELETIONS_KEY,
} from "../domain/wire-names.ts";

export type SweepAcknowledgement =
  | { state: "absent" }
  | { state: "invalid"; problem: string }
  | { state: "expired"; expiresAt: string }
  | { state: "valid"; maxDeletions: number; expiresAtMs: number };

export function readSweepAcknowledgement(data: Readonly<Record<string, string>> | undefined, nowMs: number): SweepAcknowledgement {
  if (data === undefined) return { state: "absent" };
  const maxText = data[ACK_MAX_DELETIONS_KEY]?.trim();
  const expiresText = data[ACK_EXPIRES_AT_KEY]?.trim();
  if (!maxText || !/^\d+$/.test(maxText)) {
    return { state: "invalid", problem: `${ACK_MAX_DELETIONS_KEY} must be a whole number of deletions, got ${JSON.stringify(maxText ?? null)}` };
  }
  const expiresAtMs = expiresText ? Date.parse(expiresText) : Number.NaN;
  if (!expiresText || !Number.isFinite(expiresAtMs)) {
    return { state: "invalid", problem: `${ACK_EXPIRES_AT_KEY} must be an RFC 3339 time, got ${JSON.stringify(expiresText ?? null)}` };
  }
  if (expiresAtMs <= nowMs) return { state: "expired", expiresAt: expiresText };
  return { state: "valid", maxDeletions: Number(maxText), expiresAtMs };
}

/** Whether a tripped sweep that would delete `wouldDelete` objects may go ahead. */
export function releasesBreaker(acknowledgement: SweepAcknowledgement, wouldDelete: number): boolean {
  return acknowledgement.state === "valid" && wouldDelete <= acknowledgement.maxDeletions;
}
