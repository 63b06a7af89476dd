import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { ADMISSION_API_VERSION, allowed, completeReview, decodeReview, denied, patched, replyTo } from "../../../webhook/admission/admission-review.ts";

const fixturesDir = new URL("../../fixtures/admission/", import.meta.url);
const fixtureNames = readdirSync(fixturesDir).filter((name) => name.endsWith(".json"));

test("every fixture decodes as a review of a PersistentVolumeClaim, with the object as the PVC", () => {
  assert.ok(fixtureNames.length >= 12, `only ${fixtureNames.length} fixtures`);
  for (const name of fixtureNames) {
    const body = JSON.parse(readFileSync(new URL(name, fixturesDir), "utf8"));
    const decoded = decodeReview(body);
    assert.ok(decoded.ok, name);
    assert.equal(decoded.request.uid, body.request.uid, name);
    assert.deepEqual(decoded.reply, { uid: body.request.uid, apiVersion: ADMISSION_API_VERSION, operation: body.request.operation }, name);
    assert.deepEqual(decoded.request.pvc, body.request.object ?? {}, name);
    assert.equal(decoded.request.dryRun, body.request.dryRun === true, name);
  }
});

const reply = { uid: "u1", apiVersion: ADMISSION_API_VERSION };

test("an allowed result completes with the uid and leaves warnings out when there are none", () => {
  assert.deepEqual(completeReview(reply, allowed("fresh")), {
    apiVersion: ADMISSION_API_VERSION,
    kind: "AdmissionReview",
    response: { uid: "u1", allowed: true },
  });
  assert.deepEqual(completeReview(reply, allowed("fresh", ["w"])).response.warnings, ["w"]);
});

test("a patched result encodes the operations, and with none it is a plain allow", () => {
  const review = completeReview({ ...reply, uid: "u2" }, patched("restore", [{ op: "add", path: "/spec/dataSourceRef", value: { name: "x" } }], ["note"]));
  assert.equal(review.response.allowed, true);
  assert.equal(review.response.patchType, "JSONPatch");
  assert.deepEqual(JSON.parse(Buffer.from(review.response.patch!, "base64").toString()), [{ op: "add", path: "/spec/dataSourceRef", value: { name: "x" } }]);
  assert.deepEqual(review.response.warnings, ["note"]);
  assert.deepEqual(patched("fresh", []), allowed("fresh"));
});

test("a denied result answers 403 Forbidden with the message by default and other codes when asked", () => {
  assert.deepEqual(completeReview({ ...reply, uid: "u4" }, denied("unknown", "blocked because")).response, {
    uid: "u4",
    allowed: false,
    status: { code: 403, message: "blocked because", reason: "Forbidden" },
  });
  assert.equal(completeReview(reply, denied("x", "m", [], 400)).response.status?.reason, "BadRequest");
  assert.equal(completeReview(reply, denied("x", "m", [], 413)).response.status?.reason, "RequestEntityTooLarge");
  assert.equal(completeReview(reply, denied("x", "m", [], 500)).response.status?.reason, "InternalError");
});

test("a malformed body's answer echoes whatever uid and apiVersion it carried", () => {
  const decoded = decodeReview({ apiVersion: "admission.k8s.io/v1beta1", request: { uid: "u5" } });
  assert.ok(!decoded.ok);
  const review = completeReview(decoded.reply, decoded.result);
  assert.equal(review.apiVersion, "admission.k8s.io/v1beta1");
  assert.equal(review.response.uid, "u5");
  assert.equal(review.response.allowed, false);
  assert.equal(review.response.status?.code, 400);
  assert.equal(review.response.status?.reason, "BadRequest");
  assert.match(review.response.status?.message ?? "", /not an AdmissionReview admission.k8s.io\/v1/);
  for (const raw of [undefined, null, "text", 42, [], { request: null }, { request: { uid: 7 } }]) {
    assert.deepEqual(replyTo(raw), { uid: "", apiVersion: ADMISSION_API_VERSION });
    const failed = decodeReview(raw);
    assert.ok(!failed.ok);
    assert.equal(completeReview(failed.reply, failed.result).response.allowed, false);
  }
});

test("labels over Kubernetes' limits are refused before the review is validated, and marked as such", () => {
  const body = JSON.parse(readFileSync(new URL("protected-create.json", fixturesDir), "utf8"));
  body.request.object.metadata.labels = { ["x".repeat(64)]: "v" };
  const decoded = decodeReview(body);
  assert.ok(!decoded.ok);
  assert.equal(decoded.isMetadataTooLarge, true);
  assert.equal(decoded.reply.uid, body.request.uid);
  assert.equal(decoded.result.kind === "denied" && decoded.result.status.code, 400);
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
  test(`decodeReview answers 400 for ${row.name}`, () => {
    const decoded = decodeReview(row.mutate(base()));
    assert.equal(decoded.ok, false);
    assert.ok(!decoded.ok);
    const review = completeReview(decoded.reply, decoded.result);
    assert.equal(review.response.allowed, false);
    assert.equal(review.response.status?.code, 400);
    assert.equal(review.response.uid, row.uid);
    assert.ok(review.response.status!.message.length > 0);
    assert.equal(decoded.isMetadataTooLarge, false);
  });
}
