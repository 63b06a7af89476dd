import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { isCi, requireOrSkip } from "../../harness/binaries.ts";
import { kopiaSkip } from "../../harness/kopia.ts";

// The integration suites skip through one mechanism; under CI, however it is spelled, a missing
// binary fails the run instead of letting it pass with nothing real tested.

function withEnvironment<T>(values: Record<string, string | undefined>, body: () => T): T {
  const saved = Object.fromEntries(Object.keys(values).map((key) => [key, process.env[key]]));
  for (const [key, value] of Object.entries(values)) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
  try {
    return body();
  } finally {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  }
}

test("isCi reads CI as CI systems set it", () => {
  for (const value of ["true", "1", "TRUE", "yes"]) assert.equal(withEnvironment({ CI: value }, isCi), true, value);
  for (const value of [undefined, "", "false", "0"]) assert.equal(withEnvironment({ CI: value }, isCi), false, String(value));
});

test("a missing binary fails the kopia and cluster suites under CI=1, and skips loudly outside CI", () => {
  const emptyCache = mkdtempSync(path.join(tmpdir(), "pvc-guardian-empty-cache-"));
  try {
    withEnvironment({ CI: "1", PVC_GUARDIAN_CACHE: emptyCache }, () => {
      assert.throws(() => kopiaSkip("v0.22.3"), /CI is set \(CI=1\) and missing real binaries: kopia v0\.22\.3/);
      assert.throws(() => requireOrSkip(["kube-apiserver", "etcd"]), /kube-apiserver/);
    });
    withEnvironment({ CI: undefined, PVC_GUARDIAN_CACHE: emptyCache }, () => {
      assert.match(String(kopiaSkip("v0.22.3")), /kopia v0\.22\.3/);
    });
  } finally {
    rmSync(emptyCache, { recursive: true, force: true });
  }
});
