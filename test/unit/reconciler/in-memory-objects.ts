// A small, real in-memory implementation of the KubeObjects port for unit tests: uids,
// resourceVersions, AlreadyExists and Conflict answers, label selectors (`key` and `key=value`),
// delete preconditions, and a switch that makes chosen lists come back partial.

import { randomUUID } from "node:crypto";
import { KubeApiError, resourceKindOf, type KubeObject, type KubeObjects, type ResourceKind } from "../../../webhook/kube/kube-objects.ts";

export type InMemoryObjects = KubeObjects & {
  all(kind: ResourceKind): KubeObject[];
  /** Kinds whose lists fail after the first item, as a broken continue token would. */
  partialLists: Set<string>;
  writes: number;
};

const isPlainObject = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);

function merge(live: Record<string, unknown>, applied: Record<string, unknown>): Record<string, unknown> {
  const result = { ...live };
  for (const [key, value] of Object.entries(applied)) {
    const current = result[key];
    result[key] = isPlainObject(current) && isPlainObject(value) ? merge(current, value) : structuredClone(value);
  }
  return result;
}

function matches(object: KubeObject, selector: string | undefined): boolean {
  if (!selector) return true;
  return selector.split(",").every((term) => {
    const [key, value] = term.split("=") as [string, string | undefined];
    const label = object.metadata.labels?.[key];
    return value === undefined ? label !== undefined : label === value;
  });
}

export function createInMemoryObjects(): InMemoryObjects {
  const store = new Map<string, KubeObject>();
  let version = 1;
  const keyOf = (kind: ResourceKind, namespace: string | undefined, name: string) => `${kind.kind}/${namespace ?? ""}/${name}`;
  const stamp = (object: KubeObject): KubeObject => {
    object.metadata.resourceVersion = String(++version);
    return object;
  };

  const objects: InMemoryObjects = {
    partialLists: new Set(),
    writes: 0,
    all: (kind) => [...store.values()].filter((object) => object.kind === kind.kind).map((object) => structuredClone(object)),
    async get(kind, namespace, name) {
      const found = store.get(keyOf(kind, namespace, name));
      return found ? structuredClone(found) : undefined;
    },
    async list(kind, options) {
      const items = [...store.values()]
        .filter(
          (object) =>
            object.kind === kind.kind &&
            (options.namespace === undefined || object.metadata.namespace === options.namespace) &&
            matches(object, options.labelSelector),
        )
        .map((object) => structuredClone(object));
      if (objects.partialLists.has(kind.kind)) return { complete: false, items: items.slice(0, 1), error: `list ${kind.plural}: injected partial list` };
      return { complete: true, items, resourceVersion: String(version) };
    },
    async create(object) {
      const key = keyOf(resourceKindOf(object), object.metadata.namespace, object.metadata.name);
      if (store.has(key)) throw new KubeApiError(409, "AlreadyExists", `${key} already exists`);
      objects.writes++;
      const created = stamp({
        ...structuredClone(object),
        metadata: { ...structuredClone(object.metadata), uid: randomUUID(), creationTimestamp: new Date().toISOString() },
      });
      store.set(key, created);
      return structuredClone(created);
    },
    async replace(object) {
      const key = keyOf(resourceKindOf(object), object.metadata.namespace, object.metadata.name);
      const live = store.get(key);
      if (!live) throw new KubeApiError(404, "NotFound", `${key} not found`);
      if (object.metadata.resourceVersion !== live.metadata.resourceVersion) throw new KubeApiError(409, "Conflict", `${key} was modified`);
      objects.writes++;
      const replaced = stamp({ ...structuredClone(object), metadata: { ...structuredClone(object.metadata), uid: live.metadata.uid } });
      store.set(key, replaced);
      return structuredClone(replaced);
    },
    async apply(object) {
      const key = keyOf(resourceKindOf(object), object.metadata.namespace, object.metadata.name);
      const live = store.get(key);
      if (!live) return objects.create(object);
      objects.writes++;
      const applied = stamp(merge(live, object) as KubeObject);
      store.set(key, applied);
      return structuredClone(applied);
    },
    async delete(kind, namespace, name, preconditions) {
      const key = keyOf(kind, namespace, name);
      const live = store.get(key);
      if (!live) return "not-found";
      if (live.metadata.uid !== preconditions.uid) return "precondition-failed";
      if (preconditions.resourceVersion !== undefined && live.metadata.resourceVersion !== preconditions.resourceVersion) return "precondition-failed";
      objects.writes++;
      store.delete(key);
      return "deleted";
    },
    async watch(_kind, _options, _onEvent, signal) {
      await new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener("abort", () => resolve(), { once: true })));
    },
  };
  return objects;
}
