import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ApiServerAnswer, ApiServerCall } from "../../../webhook/kube/api-server-connection.ts";
import { createKubeObjects } from "../../../webhook/kube/kube-client.ts";
import { KubeApiError, LEASES, PERSISTENT_VOLUME_CLAIMS, type KubeObject } from "../../../webhook/kube/kube-objects.ts";
import { FIELD_MANAGER } from "../../../webhook/domain/wire-names.ts";

// The object verbs over a connection that answers from a script, so what each verb sends and how
// it reads the answer are seen without a server. api-server-connection.test.ts covers the wire.

type Script = (call: ApiServerCall) => ApiServerAnswer | Promise<ApiServerAnswer>;

function scripted(script: Script) {
  const calls: ApiServerCall[] = [];
  const objects = createKubeObjects(
    {
      request: async (call) => {
        calls.push(call);
        return script(call);
      },
    },
    { listPageSize: 2, retry: { maxAttempts: 5, initialDelayMs: 1, maxDelayMs: 4 } },
  );
  return { objects, calls };
}

const ok = (body: unknown, status = 200): ApiServerAnswer => ({ status, body, text: JSON.stringify(body) });
const status = (code: number, reason: string, message = `${reason} happened`): ApiServerAnswer => ok({ kind: "Status", code, reason, message }, code);

const pvc = (name: string, extra: Record<string, unknown> = {}) => ({ metadata: { name, namespace: "media", ...extra } });

const lease: KubeObject = { apiVersion: LEASES.apiVersion, kind: LEASES.kind, metadata: { name: "pvc-guardian", namespace: "system" }, spec: {} };

describe("createKubeObjects", () => {
  it("lists page by page, and gives items their apiVersion, kind and only pvc-guardian's managedFields", async () => {
    const { objects, calls } = scripted((call) =>
      call.query?.["continue"] === undefined
        ? ok({
            metadata: { continue: "page-2", resourceVersion: "10" },
            items: [pvc("a", { managedFields: [{ manager: FIELD_MANAGER }, { manager: "kubectl" }] }), pvc("b")],
          })
        : ok({ metadata: { resourceVersion: "11" }, items: [pvc("c")] }),
    );
    const result = await objects.list(PERSISTENT_VOLUME_CLAIMS, { namespace: "media", labelSelector: "app=x" });
    assert.ok(result.complete);
    assert.equal(result.resourceVersion, "11");
    assert.deepEqual(
      result.items.map((item) => [item.apiVersion, item.kind, item.metadata.name]),
      [
        ["v1", "PersistentVolumeClaim", "a"],
        ["v1", "PersistentVolumeClaim", "b"],
        ["v1", "PersistentVolumeClaim", "c"],
      ],
    );
    assert.deepEqual(result.items[0]!.metadata.managedFields, [{ manager: FIELD_MANAGER }]);
    assert.deepEqual(
      calls.map((call) => [call.verb, call.path, call.query]),
      [
        ["list", "/api/v1/namespaces/media/persistentvolumeclaims", { labelSelector: "app=x", fieldSelector: undefined, limit: "2", continue: undefined }],
        ["list", "/api/v1/namespaces/media/persistentvolumeclaims", { labelSelector: "app=x", fieldSelector: undefined, limit: "2", continue: "page-2" }],
      ],
    );
  });

  it("marks a list incomplete, with what came and why, when a page fails", async () => {
    const { objects } = scripted((call) =>
      call.query?.["continue"] === undefined ? ok({ metadata: { continue: "page-2" }, items: [pvc("a")] }) : status(403, "Forbidden", "no list for you"),
    );
    const result = await objects.list(PERSISTENT_VOLUME_CLAIMS, {});
    assert.equal(result.complete, false);
    assert.deepEqual(
      result.items.map((item) => item.metadata.name),
      ["a"],
    );
    assert.ok(!result.complete && result.error === "list persistentvolumeclaims: GET /api/v1/persistentvolumeclaims: 403 no list for you");
  });

  it("gets an object, undefined when it does not exist, and a KubeApiError for any other failure", async () => {
    const { objects, calls } = scripted((call) =>
      call.path.endsWith("/here") ? ok(lease) : call.path.endsWith("/gone") ? status(404, "NotFound") : status(403, "Forbidden"),
    );
    assert.deepEqual(await objects.get(LEASES, "system", "here"), lease);
    assert.equal(await objects.get(LEASES, "system", "gone"), undefined);
    await assert.rejects(objects.get(LEASES, "system", "secret"), (error: unknown) => {
      assert.ok(error instanceof KubeApiError);
      assert.equal(error.status, 403);
      assert.equal(error.reason, "Forbidden");
      assert.equal(error.message, "GET /apis/coordination.k8s.io/v1/namespaces/system/leases/secret: 403 Forbidden happened");
      return true;
    });
    assert.deepEqual(
      calls.map((call) => call.verb),
      ["get", "get", "get"],
    );
  });

  it("retries a request the API server could not serve", async () => {
    let attempts = 0;
    const { objects } = scripted(() => (++attempts < 3 ? status(503, "ServiceUnavailable") : ok(lease)));
    assert.deepEqual(await objects.get(LEASES, "system", "pvc-guardian"), lease);
    assert.equal(attempts, 3);
  });

  it("writes with pvc-guardian's field manager and strict field validation", async () => {
    const { objects, calls } = scripted((call) => ok(call.body, call.verb === "create" ? 201 : 200));
    await objects.create(lease);
    await objects.replace(lease);
    await objects.apply(lease, { force: false });
    await objects.apply(lease, { force: true });
    const write = { fieldManager: FIELD_MANAGER, fieldValidation: "Strict" };
    assert.deepEqual(
      calls.map((call) => [call.verb, call.path, call.query, call.contentType]),
      [
        ["create", "/apis/coordination.k8s.io/v1/namespaces/system/leases", write, undefined],
        ["update", "/apis/coordination.k8s.io/v1/namespaces/system/leases/pvc-guardian", write, undefined],
        ["patch", "/apis/coordination.k8s.io/v1/namespaces/system/leases/pvc-guardian", write, "application/apply-patch+yaml"],
        ["patch", "/apis/coordination.k8s.io/v1/namespaces/system/leases/pvc-guardian", { ...write, force: "true" }, "application/apply-patch+yaml"],
      ],
    );
    assert.ok(calls.every((call) => call.body === lease));
  });

  it("deletes with preconditions, and names a missing object and a failed precondition as outcomes", async () => {
    const answers = [ok({}), status(404, "NotFound"), status(409, "Conflict")];
    const { objects, calls } = scripted(() => answers.shift()!);
    const preconditions = { uid: "u-1", resourceVersion: "7" };
    assert.equal(await objects.delete(LEASES, "system", "a", preconditions), "deleted");
    assert.equal(await objects.delete(LEASES, "system", "a", preconditions), "not-found");
    assert.equal(await objects.delete(LEASES, "system", "a", preconditions), "precondition-failed");
    assert.deepEqual(calls[0]!.body, { apiVersion: "v1", kind: "DeleteOptions", propagationPolicy: "Background", preconditions });
    assert.equal(calls[0]!.verb, "delete");
  });

  it("watches: hands over the events it knows with apiVersion and kind, and resolves when the server ends the watch", async () => {
    const { objects, calls } = scripted((call) => {
      for (const value of [
        { type: "ADDED", object: pvc("a") },
        { type: "BOOKMARK", object: { metadata: { resourceVersion: "12" } } },
        { type: "SOMETHING-NEW", object: pvc("b") },
        "not json",
        { type: "DELETED", object: pvc("a") },
      ]) {
        call.onJsonLine!(value);
      }
      return { status: 200, body: undefined, text: "" };
    });
    const events: [string, string, string | undefined][] = [];
    await objects.watch(
      PERSISTENT_VOLUME_CLAIMS,
      { namespace: "media", resourceVersion: "10", labelSelector: "" },
      (event) => events.push([event.type, event.object.kind, event.object.metadata.name]),
      new AbortController().signal,
    );
    assert.deepEqual(events, [
      ["ADDED", "PersistentVolumeClaim", "a"],
      ["BOOKMARK", "PersistentVolumeClaim", undefined],
      ["DELETED", "PersistentVolumeClaim", "a"],
    ]);
    assert.deepEqual(calls[0]!.query, {
      watch: "true",
      allowWatchBookmarks: "true",
      timeoutSeconds: "300",
      labelSelector: undefined,
      fieldSelector: undefined,
      resourceVersion: "10",
    });
  });

  it("rejects a watch that the server ends with an ERROR event or refuses to start", async () => {
    const { objects } = scripted((call) => {
      if (call.path.includes("/namespaces/")) {
        call.onJsonLine!({ type: "ERROR", object: { kind: "Status", code: 410, reason: "Expired", message: "too old resource version" } });
        return { status: 200, body: undefined, text: "" };
      }
      return status(403, "Forbidden");
    });
    const signal = new AbortController().signal;
    await assert.rejects(
      objects.watch(PERSISTENT_VOLUME_CLAIMS, { namespace: "media" }, () => {}, signal),
      (error: unknown) => {
        assert.ok(error instanceof KubeApiError);
        assert.deepEqual(
          [error.status, error.reason, error.message],
          [410, "Expired", "WATCH /api/v1/namespaces/media/persistentvolumeclaims: 410 too old resource version"],
        );
        return true;
      },
    );
    await assert.rejects(
      objects.watch(PERSISTENT_VOLUME_CLAIMS, {}, () => {}, signal),
      { status: 403 },
    );
  });

  it("resolves a watch that its caller's signal ends", async () => {
    const controller = new AbortController();
    const { objects } = scripted(async () => {
      controller.abort(new Error("stopping"));
      throw new Error("stopping");
    });
    await objects.watch(PERSISTENT_VOLUME_CLAIMS, {}, () => {}, controller.signal);
  });
});
