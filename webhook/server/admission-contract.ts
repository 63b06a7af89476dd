// Stand-in for the protocol layer's exports (webhook/admission/admission-review.ts and
// review-handlers.ts) so the transport can be built and tested before they land; it is replaced by
// direct imports of those modules.

export type AdmissionReviewOut = {
  apiVersion: string;
  kind: 'AdmissionReview';
  response: {
    uid: string;
    allowed: boolean;
    status?: { code: number; message: string; reason?: string };
    patchType?: 'JSONPatch';
    patch?: string;
    warnings?: string[];
  };
};

export type ReviewHandler = (body: unknown, signal: AbortSignal) => Promise<AdmissionReviewOut>;

export function rejectMalformedReview(code: 400 | 413 | 415, message: string, raw?: unknown): AdmissionReviewOut {
  const request = typeof raw === 'object' && raw !== null ? (raw as { request?: { uid?: unknown } }).request : undefined;
  const apiVersion = typeof raw === 'object' && raw !== null ? (raw as { apiVersion?: unknown }).apiVersion : undefined;
  return {
    apiVersion: typeof apiVersion === 'string' ? apiVersion : 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: {
      uid: typeof request?.uid === 'string' ? request.uid : '',
      allowed: false,
      status: { code, message },
    },
  };
}
