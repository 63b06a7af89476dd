import { FIELD_MANAGER } from "../domain/wire-names.ts";
import type { KubeObject } from "../kube/kube-objects.ts";

// Whether a live object differs from what we would apply, in the fields we set, without asking
// the API server. Two ways it can: a field we set has another value (or is gone), or a field we
// applied earlier is no longer in what we want (server-side apply removes it, so we must apply).
// Fields other managers own and we do not set never count: a user's edit to them survives.

export type Drift = { state: "missing" } | { state: "in-sync" } | { state: "drifted"; paths: string[] };

const isPlainObject = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((item, index) => deepEqual(item, b[index]));
  if (isPlainObject(a) && isPlainObject(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((key) => Object.hasOwn(b, key) && deepEqual(a[key], b[key]));
  }
  return false;
}

/** Paths where `desired` sets a value that `live` does not hold. */
export function differingPaths(desired: unknown, live: unknown, path = ""): string[] {
  if (isPlainObject(desired)) {
    if (!isPlainObject(live)) return [path || "."];
    const found: string[] = [];
    for (const [key, value] of Object.entries(desired)) found.push(...differingPaths(value, live[key], path ? `${path}.${key}` : key));
    return found;
  }
  return deepEqual(desired, live) ? [] : [path || "."];
}

/**
 * Fields our apply entries own on `live` that `desired` no longer sets. managedFields uses
 * `f:<name>` for fields; other keys (`.`, `k:`, `v:`, `i:`) sit under a field we set whole.
 */
export function ownedButUnwanted(desired: unknown, owned: Record<string, unknown>, path = ""): string[] {
  const found: string[] = [];
  for (const [key, child] of Object.entries(owned)) {
    if (!key.startsWith("f:")) continue;
    const name = key.slice(2);
    const childPath = path ? `${path}.${name}` : name;
    if (!isPlainObject(desired) || !Object.hasOwn(desired, name)) {
      found.push(childPath);
      continue;
    }
    const desiredChild = desired[name];
    if (isPlainObject(desiredChild) && isPlainObject(child)) found.push(...ownedButUnwanted(desiredChild, child, childPath));
  }
  return found;
}

/** The union of the field sets our Apply operations own on the main resource. */
export function appliedFieldSet(live: KubeObject, fieldManager: string = FIELD_MANAGER): Record<string, unknown> | undefined {
  const entries = (live.metadata.managedFields ?? []).filter(
    (entry) => entry.manager === fieldManager && entry.operation === "Apply" && (entry.subresource ?? "") === "",
  );
  if (entries.length === 0) return undefined;
  if (entries.length === 1) return entries[0]!.fieldsV1 ?? {};
  const merged: Record<string, unknown> = {};
  const mergeInto = (target: Record<string, unknown>, source: Record<string, unknown>): void => {
    for (const [key, value] of Object.entries(source)) {
      const existing = target[key];
      if (isPlainObject(existing) && isPlainObject(value)) mergeInto(existing, value);
      else target[key] = isPlainObject(value) ? structuredClone(value) : value;
    }
  };
  for (const entry of entries) mergeInto(merged, entry.fieldsV1 ?? {});
  return merged;
}

/** What applying `desired` would change on `live`; identity fields (name, namespace) are not compared. */
export function planDrift(desired: KubeObject, live: KubeObject | undefined): Drift {
  if (live === undefined) return { state: "missing" };
  const { name: _name, namespace: _namespace, ...desiredMeta } = desired.metadata;
  const { apiVersion: _apiVersion, kind: _kind, metadata: _metadata, ...desiredBody } = desired;
  const comparable = { metadata: desiredMeta, ...desiredBody };
  const paths = differingPaths(comparable, live);
  const owned = appliedFieldSet(live);
  if (owned) paths.push(...ownedButUnwanted(comparable, owned).map((path) => `${path} (no longer wanted)`));
  return paths.length === 0 ? { state: "in-sync" } : { state: "drifted", paths };
}
