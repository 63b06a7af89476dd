// A Kubernetes adapter that refuses chosen verbs on chosen kinds (HTTP 403, as RBAC would) and
// passes everything else to the real one: how tests reach the error paths of a live cluster.

import type { KubeObjects } from "../../webhook/kube/kube-objects.ts";

export function failingObjects(inner: KubeObjects, fails: (verb: string, kind: string) => boolean): KubeObjects {
  const refuse = (verb: string, kind: string) => {
    if (fails(verb, kind)) throw Object.assign(new Error(`injected failure: ${verb} ${kind}`), { status: 403 });
  };
  return {
    get: async (kind, ns, name, signal) => (refuse("get", kind.kind), inner.get(kind, ns, name, signal)),
    list: async (kind, options, signal) => (refuse("list", kind.kind), inner.list(kind, options, signal)),
    create: async (object, signal) => (refuse("create", object.kind), inner.create(object, signal)),
    replace: async (object, signal) => (refuse("replace", object.kind), inner.replace(object, signal)),
    apply: async (object, options, signal) => (refuse("apply", object.kind), inner.apply(object, options, signal)),
    delete: async (kind, ns, name, pre, signal) => (refuse("delete", kind.kind), inner.delete(kind, ns, name, pre, signal)),
    watch: (kind, options, onEvent, signal) => inner.watch(kind, options, onEvent, signal),
  };
}
