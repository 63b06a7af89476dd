// The parts of a PersistentVolumeClaim the decisions read. Everything is optional because the
// objects come from the wire and a missing field must never crash a decision.

export type TypedObjectReference = {
  apiGroup?: string;
  kind?: string;
  name?: string;
  namespace?: string;
};

export type PersistentVolumeClaim = {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    generateName?: string;
    namespace?: string;
    uid?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    creationTimestamp?: string;
  };
  spec?: {
    accessModes?: string[];
    storageClassName?: string;
    resources?: { requests?: Record<string, string | number> };
    dataSource?: TypedObjectReference;
    dataSourceRef?: TypedObjectReference;
    [field: string]: unknown;
  };
  status?: {
    phase?: string;
    [field: string]: unknown;
  };
};
