import { test } from "node:test";
import assert from "node:assert/strict";
import { DEFAULT_POLICY } from "../../../webhook/domain/policy.ts";
import { resolveProtection } from "../../../webhook/domain/protection.ts";

const policy = DEFAULT_POLICY;
const rows: Array<{ name: string; labels: Record<string, string> | undefined; namespace?: string; kind: string; tierName?: string; hint?: string }> = [
  { name: "no labels at all is unlabelled", labels: undefined, kind: "unlabelled" },
  { name: "labels without backup is unlabelled", labels: { "app.kubernetes.io/name": "jellyfin" }, kind: "unlabelled" },
  { name: "backup: hourly is protected by the hourly tier", labels: { backup: "hourly" }, kind: "protected", tierName: "hourly" },
  { name: "backup: daily is protected by the daily tier", labels: { backup: "daily" }, kind: "protected", tierName: "daily" },
  { name: "a configured tier in an excluded namespace is excluded", labels: { backup: "hourly" }, namespace: "kube-system", kind: "excluded-namespace" },
  {
    name: "an unknown tier in an excluded namespace is excluded without a warning",
    labels: { backup: "Hourly" },
    namespace: "volsync-system",
    kind: "excluded-namespace",
  },
  { name: "Hourly (wrong case) names no tier and hints at hourly", labels: { backup: "Hourly" }, kind: "unknown-tier", hint: "hourly" },
  { name: "DAILY names no tier and hints at daily", labels: { backup: "DAILY" }, kind: "unknown-tier", hint: "daily" },
  { name: "a padded value names no tier and hints at the trimmed one", labels: { backup: " hourly " }, kind: "unknown-tier", hint: "hourly" },
  { name: "weekly names no tier and gives no hint", labels: { backup: "weekly" }, kind: "unknown-tier" },
  { name: "an empty value names no tier", labels: { backup: "" }, kind: "unknown-tier" },
  { name: "true names no tier", labels: { backup: "true" }, kind: "unknown-tier" },
  { name: "__proto__ names no tier (no prototype lookup)", labels: { backup: "__proto__" }, kind: "unknown-tier" },
  { name: "constructor names no tier (no prototype lookup)", labels: { backup: "constructor" }, kind: "unknown-tier" },
  { name: "toString names no tier (no prototype lookup)", labels: { backup: "toString" }, kind: "unknown-tier" },
];
for (const row of rows) {
  test(`resolveProtection: ${row.name}`, () => {
    const result = resolveProtection(row.labels, row.namespace ?? "media", policy);
    assert.equal(result.kind, row.kind);
    if (result.kind === "protected") {
      assert.equal(result.tierName, row.tierName);
      assert.equal(result.tier, policy.tiers[row.tierName!]);
    }
    if (result.kind === "excluded-namespace") assert.equal(result.namespace, row.namespace);
    if (result.kind === "unknown-tier") {
      assert.equal(result.value, row.labels!["backup"]);
      assert.match(result.warning, /NOT backed up or restored/);
      assert.match(result.warning, /hourly, daily/);
      if (row.hint) assert.match(result.warning, new RegExp(`Did you mean "${row.hint}"\\? Tier names are case-sensitive`));
      else assert.doesNotMatch(result.warning, /Did you mean/);
    }
  });
}

test("resolveProtection follows the configured tiers, not the defaults", () => {
  const custom = { tiers: { gold: { schedule: "H * * * *", retain: { latest: 3 } } }, excludedNamespaces: [] };
  assert.equal(resolveProtection({ backup: "gold" }, "kube-system", custom).kind, "protected");
  assert.equal(resolveProtection({ backup: "hourly" }, "media", custom).kind, "unknown-tier");
});
