import { test } from "node:test";
import assert from "node:assert/strict";
import { errorMessage } from "../../../webhook/domain/error-message.ts";

test("errorMessage gives an Error's message and prints anything else thrown", () => {
  assert.equal(errorMessage(new TypeError("bad input")), "bad input");
  assert.equal(errorMessage("a thrown string"), "a thrown string");
  assert.equal(errorMessage(undefined), "undefined");
  assert.equal(errorMessage({ code: 7 }), "[object Object]");
  assert.equal(errorMessage(Object.create(null)), "an error that cannot be printed");
});
