import { randomBytes } from "node:crypto";
import { formatMicroTime } from "../domain/rfc3339-time.ts";
import type { PvcEventReason } from "../domain/wire-names.ts";
import { EVENTS, type KubeObjects } from "./kube-objects.ts";

// Kubernetes Events (events.k8s.io/v1) about PVCs, so `kubectl describe pvc` tells a user what
// pvc-guardian decided. Events are a courtesy: a failure to record one is logged by the caller's
// choice and never fails the work it describes.

export type PvcEvent = {
  namespace: string;
  pvcName: string;
  /** Unknown during admission: the PVC is not stored yet. */
  pvcUid?: string;
  type: "Normal" | "Warning";
  reason: PvcEventReason;
  /** What was done, UpperCamelCase, e.g. Create. */
  action: string;
  note: string;
};

export interface PvcEventRecorder {
  /** Resolves whether or not the Event was stored; returns false when it was not. */
  record(event: PvcEvent, signal?: AbortSignal): Promise<boolean>;
}

const MAX_NOTE_BYTES = 1024;

export function createPvcEventRecorder(
  objects: KubeObjects,
  source: { reportingController: string; reportingInstance: string },
  onFailure?: (event: PvcEvent, error: unknown) => void,
): PvcEventRecorder {
  return {
    async record(event, signal) {
      const now = new Date();
      const note = Buffer.byteLength(event.note) > MAX_NOTE_BYTES ? `${event.note.slice(0, MAX_NOTE_BYTES - 3)}...` : event.note;
      try {
        await objects.create(
          {
            apiVersion: EVENTS.apiVersion,
            kind: EVENTS.kind,
            metadata: { name: `${event.pvcName.slice(0, 200)}.${now.getTime().toString(16)}${randomBytes(4).toString("hex")}`, namespace: event.namespace },
            eventTime: formatMicroTime(now.getTime()),
            reportingController: source.reportingController,
            reportingInstance: source.reportingInstance.slice(0, 128),
            action: event.action,
            reason: event.reason,
            type: event.type,
            note,
            regarding: {
              apiVersion: "v1",
              kind: "PersistentVolumeClaim",
              namespace: event.namespace,
              name: event.pvcName,
              ...(event.pvcUid === undefined ? {} : { uid: event.pvcUid }),
            },
          },
          signal,
        );
        return true;
      } catch (error) {
        onFailure?.(event, error);
        return false;
      }
    },
  };
}
