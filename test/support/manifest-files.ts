// Reads the kustomize base the way kustomize lists it (kustomization.yaml's resources, in order),
// without the kustomize binary: the agreement tests run as unit tests, and the harness registers
// the shipped objects on a test cluster. The manifests integration test renders the same files
// with the real kustomize.

import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parse, parseAllDocuments } from "yaml";

export type ManifestObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
};

export const manifestsDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "manifests");

export function readKustomization(dir: string): { resources?: string[]; components?: string[] } {
  return parse(readFileSync(path.join(dir, "kustomization.yaml"), "utf8")) as { resources?: string[] };
}

export function readObjects(dir: string): ManifestObject[] {
  const objects: ManifestObject[] = [];
  for (const resource of readKustomization(dir).resources ?? []) {
    for (const document of parseAllDocuments(readFileSync(path.join(dir, resource), "utf8"))) {
      if (document.errors.length > 0) throw new Error(`${resource}: ${document.errors[0]!.message}`);
      const value = document.toJS() as ManifestObject | null;
      if (value !== null) objects.push(value);
    }
  }
  return objects;
}

export function findObject<T = ManifestObject>(objects: readonly ManifestObject[], kind: string, name: string, namespace?: string): T {
  const found = objects.filter((o) => o.kind === kind && o.metadata.name === name && (namespace === undefined || o.metadata.namespace === namespace));
  if (found.length !== 1) throw new Error(`expected one ${kind} ${namespace ? `${namespace}/` : ""}${name}, found ${found.length}`);
  return found[0] as T;
}
