// How much admission work the process takes on at once: a count of reviews in progress and a
// budget of body bytes held by them. A review holds its bytes from the first one read until its
// answer is written, so the budget covers the raw chunks, the decoded text and the parsed object
// alike (each a small multiple of the body). Without it, 30 stalled 7 MiB bodies took RSS from
// 181 to 397 MiB; with it, the bytes held stay under the budget whatever the clients do.

export type AdmissionGateLimits = {
  maxConcurrentReviews: number;
  maxInFlightBodyBytes: number;
};

export type AdmissionTicket = {
  /** Takes `bytes` more from the shared budget; false (taking nothing) when it would overflow. */
  reserve(bytes: number): boolean;
  /** Gives back the slot and every byte reserved; safe to call more than once. */
  release(): void;
};

export type AdmissionGate = {
  /** A slot for one review, or undefined when all are taken. */
  tryEnter(): AdmissionTicket | undefined;
  readonly reviewsInProgress: number;
  readonly bytesInFlight: number;
};

export function createAdmissionGate(limits: AdmissionGateLimits): AdmissionGate {
  let reviewsInProgress = 0;
  let bytesInFlight = 0;
  return {
    get reviewsInProgress() {
      return reviewsInProgress;
    },
    get bytesInFlight() {
      return bytesInFlight;
    },
    tryEnter() {
      if (reviewsInProgress >= limits.maxConcurrentReviews) return undefined;
      reviewsInProgress += 1;
      let held = 0;
      let isReleased = false;
      return {
        reserve(bytes) {
          if (isReleased || bytesInFlight + bytes > limits.maxInFlightBodyBytes) return false;
          bytesInFlight += bytes;
          held += bytes;
          return true;
        },
        release() {
          if (isReleased) return;
          isReleased = true;
          bytesInFlight -= held;
          held = 0;
          reviewsInProgress -= 1;
        },
      };
    },
  };
}
