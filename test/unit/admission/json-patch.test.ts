import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { encodePatch, escapePointerToken, jsonPointer, type JsonPatchOperation } from "../../../webhook/admission/json-patch.ts";
import { applyAdmissionPatch, applyJsonPatch, parsePointer } from "../../support/apply-json-patch.ts";

const fixture = JSON.parse(readFileSync(new URL("../../fixtures/admission/protected-create.json", import.meta.url), "utf8"));
const pvc = fixture.request.object as Record<string, any>;

const tokens: Array<{ token: string; escaped: string }> = [
  { token: "plain", escaped: "plain" },
  { token: "volsync.backup/skip-restore", escaped: "volsync.backup~1skip-restore" },
  { token: "a~b", escaped: "a~0b" },
  { token: "~1", escaped: "~01" },
  { token: "/~", escaped: "~1~0" },
  { token: "~/", escaped: "~0~1" },
  { token: "", escaped: "" },
  { token: "ünïcødé/🙂", escaped: "ünïcødé~1🙂" },
];
for (const row of tokens) {
  test(`escapePointerToken escapes ${JSON.stringify(row.token)} as ${JSON.stringify(row.escaped)} and round-trips`, () => {
    assert.equal(escapePointerToken(row.token), row.escaped);
    assert.deepEqual(parsePointer(jsonPointer("metadata", row.token)), ["metadata", row.token]);
  });
}

test("jsonPointer joins escaped tokens with / and is empty for no tokens", () => {
  assert.equal(jsonPointer("spec", "dataSourceRef"), "/spec/dataSourceRef");
  assert.equal(jsonPointer("metadata", "annotations", "example.com/a~b"), "/metadata/annotations/example.com~1a~0b");
  assert.equal(jsonPointer(), "");
});

test("encodePatch is base64 of the JSON array of operations", () => {
  const operations: JsonPatchOperation[] = [{ op: "add", path: "/spec/dataSourceRef", value: { kind: "ReplicationDestination" } }];
  const encoded = encodePatch(operations);
  assert.match(encoded, /^[A-Za-z0-9+/]+=*$/);
  assert.deepEqual(JSON.parse(Buffer.from(encoded, "base64").toString("utf8")), operations);
});

test("a patch built with jsonPointer adds, replaces, tests and removes keys containing / and ~ on the fixture", () => {
  const annotations = (key: string) => jsonPointer("metadata", "annotations", key);
  const withAnnotations = applyJsonPatch(pvc, [{ op: "add", path: jsonPointer("metadata", "annotations"), value: {} }]);
  assert.ok(withAnnotations.ok);
  const operations: JsonPatchOperation[] = [
    { op: "add", path: annotations("example.com/path~with~tilde"), value: "one" },
    { op: "add", path: annotations("~1"), value: "literal tilde-one" },
    { op: "add", path: annotations("volsync.backup/restore-as-of"), value: "2026-11-20T00:00:00Z" },
    { op: "test", path: annotations("example.com/path~with~tilde"), value: "one" },
    { op: "replace", path: annotations("example.com/path~with~tilde"), value: "two" },
    { op: "remove", path: annotations("volsync.backup/restore-as-of") },
    { op: "add", path: jsonPointer("metadata", "labels", "app.kubernetes.io/part-of"), value: "media" },
  ];
  const result = applyAdmissionPatch(withAnnotations.document, encodePatch(operations));
  assert.ok(result.ok, !result.ok ? result.error : "");
  const patched = result.document as typeof pvc;
  assert.deepEqual(patched.metadata.annotations, { "example.com/path~with~tilde": "two", "~1": "literal tilde-one" });
  assert.equal(patched.metadata.labels["app.kubernetes.io/part-of"], "media");
  assert.equal(patched.metadata.labels["backup"], "hourly");
  assert.equal("annotations" in pvc.metadata, false, "the fixture itself is untouched");
});

test("an unescaped / in a key addresses a different path (why escaping matters)", () => {
  const wrong = applyJsonPatch(pvc, [{ op: "add", path: "/metadata/labels/app.kubernetes.io/part-of", value: "media" }]);
  assert.equal(wrong.ok, false);
});

test("the test applier refuses what the API server refuses", () => {
  const cases: Array<{ name: string; patch: unknown }> = [
    { name: "a patch that is not an array", patch: { op: "add" } },
    { name: "replace of a missing key", patch: [{ op: "replace", path: "/spec/dataSourceRef", value: {} }] },
    { name: "remove of a missing key", patch: [{ op: "remove", path: "/spec/dataSource" }] },
    { name: "add under a missing parent", patch: [{ op: "add", path: "/spec/missing/child", value: 1 }] },
    { name: "a failing test", patch: [{ op: "test", path: "/spec/storageClassName", value: "nfs" }] },
    { name: "an invalid escape", patch: [{ op: "add", path: "/metadata/labels/a~2b", value: "x" }] },
    { name: "a pointer without a leading /", patch: [{ op: "add", path: "spec", value: {} }] },
    { name: "an array index out of range", patch: [{ op: "add", path: "/spec/accessModes/5", value: "ReadOnlyMany" }] },
    { name: "an unknown op", patch: [{ op: "merge", path: "/spec", value: {} }] },
  ];
  for (const row of cases) assert.equal(applyJsonPatch(pvc, row.patch).ok, false, row.name);
});

test("the test applier applies array operations and is all-or-nothing", () => {
  const appended = applyJsonPatch(pvc, [{ op: "add", path: "/spec/accessModes/-", value: "ReadOnlyMany" }]);
  assert.ok(appended.ok);
  assert.deepEqual((appended.document as typeof pvc).spec.accessModes, ["ReadWriteOnce", "ReadOnlyMany"]);
  const partial = applyJsonPatch(pvc, [
    { op: "add", path: "/spec/dataSourceRef", value: { name: "x" } },
    { op: "remove", path: "/spec/nothing" },
  ]);
  assert.equal(partial.ok, false);
  assert.equal("dataSourceRef" in pvc.spec, false);
});
