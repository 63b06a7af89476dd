import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { ADMISSION_API_VERSION, allowed, denied, parsePvcReview, patched, rejectMalformedReview } from "../../../webhook/admission/admission-review.ts";

const fixturesDir = new URL("../../fixtures/admission/", import.meta.url);
const fixtureNames = readdirSync(fixturesDir).filter((name) => name.endsWith(".json"));

test("every fixture parses as an AdmissionReview for a PersistentVolumeClaim", () => {
  assert.ok(fixtureNames.length >= 12, `only ${fixtureNames.length} fixtures`);
  for (const name of fixtureNames) {
    const body = JSON.parse(readFileSync(new URL(name, fixturesDir), "utf8"));
    const parsed = parsePvcReview(body);
    assert.ok(parsed.ok, name);
    assert.equal(parsed.request.uid, body.request.uid, name);
    assert.equal(parsed.request.kind.kind, "PersistentVolumeClaim", name);
  }
});

test("allowed echoes the uid and leaves warnings out when there are none", () => {
  assert.deepEqual(allowed("u1"), { apiVersion: ADMISSION_API_VERSION, kind: "AdmissionReview", response: { uid: "u1", allowed: true } });
  assert.deepEqual(allowed("u1", ["w"]).response.warnings, ["w"]);
});

test("patched encodes the operations, and with none it is a plain allow", () => {
  const review = patched("u2", [{ op: "add", path: "/spec/dataSourceRef", value: { name: "x" } }], ["note"]);
  assert.equal(review.response.allowed, true);
  assert.equal(review.response.patchType, "JSONPatch");
  assert.deepEqual(JSON.parse(Buffer.from(review.response.patch!, "base64").toString()), [{ op: "add", path: "/spec/dataSourceRef", value: { name: "x" } }]);
  assert.deepEqual(review.response.warnings, ["note"]);
  assert.deepEqual(patched("u3", []), allowed("u3"));
});

test("denied answers 403 Forbidden with the message by default and other codes when asked", () => {
  assert.deepEqual(denied("u4", "blocked because").response, {
    uid: "u4",
    allowed: false,
    status: { code: 403, message: "blocked because", reason: "Forbidden" },
  });
  assert.equal(denied("u4", "m", [], 400).response.status?.reason, "BadRequest");
  assert.equal(denied("u4", "m", [], 500).response.status?.reason, "InternalError");
});

test("rejectMalformedReview echoes the uid and apiVersion the body carried", () => {
  const review = rejectMalformedReview(400, "bad", { apiVersion: "admission.k8s.io/v1beta1", request: { uid: "u5" } });
  assert.deepEqual(review, {
    apiVersion: "admission.k8s.io/v1beta1",
    kind: "AdmissionReview",
    response: { uid: "u5", allowed: false, status: { code: 400, message: "bad", reason: "BadRequest" } },
  });
  assert.equal(rejectMalformedReview(413, "too big").response.status?.reason, "RequestEntityTooLarge");
  for (const raw of [undefined, null, "text", 42, [], { request: null }, { request: { uid: 7 } }]) {
    const answer = rejectMalformedReview(400, "bad", raw);
    assert.equal(answer.response.uid, "");
    assert.equal(answer.apiVersion, ADMISSION_API_VERSION);
    assert.equal(answer.response.allowed, false);
  }
});

const base = () => JSON.parse(readFileSync(new URL("protected-create.json", fixturesDir), "utf8"));
const malformed: Array<{ name: string; mutate: (body: any) => unknown; uid: string }> = [
  { name: "a body that is not an object", mutate: () => "hello", uid: "" },
  { name: "a review without a request", mutate: (b) => ({ apiVersion: b.apiVersion, kind: b.kind }), uid: "" },
  { name: "a request without a uid", mutate: (b) => (delete b.request.uid, b), uid: "" },
  { name: "an empty uid", mutate: (b) => ((b.request.uid = ""), b), uid: "" },
  { name: "the v1beta1 apiVersion", mutate: (b) => ((b.apiVersion = "admission.k8s.io/v1beta1"), b), uid: "705ab4f5-6393-11e8-b7cc-42010a800002" },
  { name: "a kind other than AdmissionReview", mutate: (b) => ((b.kind = "AdmissionResponse"), b), uid: "705ab4f5-6393-11e8-b7cc-42010a800002" },
  { name: "an unknown operation", mutate: (b) => ((b.request.operation = "PATCH"), b), uid: "705ab4f5-6393-11e8-b7cc-42010a800002" },
  { name: "an object that is an array", mutate: (b) => ((b.request.object = [1]), b), uid: "705ab4f5-6393-11e8-b7cc-42010a800002" },
  {
    name: "a Pod instead of a PVC",
    mutate: (b) => ((b.request.kind = { group: "", version: "v1", kind: "Pod" }), b),
    uid: "705ab4f5-6393-11e8-b7cc-42010a800002",
  },
  {
    name: "a PVC-named kind from another group",
    mutate: (b) => ((b.request.kind = { group: "example.com", version: "v1", kind: "PersistentVolumeClaim" }), b),
    uid: "705ab4f5-6393-11e8-b7cc-42010a800002",
  },
];
for (const row of malformed) {
  test(`parsePvcReview answers 400 for ${row.name}`, () => {
    const parsed = parsePvcReview(row.mutate(base()));
    assert.equal(parsed.ok, false);
    assert.ok(!parsed.ok);
    assert.equal(parsed.outcome.review.response.allowed, false);
    assert.equal(parsed.outcome.review.response.status?.code, 400);
    assert.equal(parsed.outcome.review.response.uid, row.uid);
    assert.ok(parsed.outcome.review.response.status!.message.length > 0);
  });
}
