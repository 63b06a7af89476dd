import { test } from "node:test";
import assert from "node:assert/strict";
import { matchesLabelSelector, repositoryForNamespace, repositoryScopeProblems, type RepositoryScope } from "../../../webhook/domain/repository-mapping.ts";

const scopes: RepositoryScope[] = [
  { name: "shared", isDefault: true },
  { name: "finance", namespaces: ["ledger", "payroll"] },
  { name: "team-a", namespaceSelector: { matchLabels: { team: "a" } } },
  { name: "regulated", namespaceSelector: { matchExpressions: [{ key: "compliance", operator: "In", values: ["pci", "hipaa"] }] } },
];

const rows: Array<{ name: string; namespace: string; labels: Record<string, string> | undefined; repository?: string; reason?: RegExp }> = [
  { name: "a listed namespace belongs to its repository, whatever its labels", namespace: "ledger", labels: { team: "a" }, repository: "finance" },
  { name: "a listed namespace needs no labels", namespace: "payroll", labels: undefined, repository: "finance" },
  { name: "a selector picks a namespace by its labels", namespace: "shop", labels: { team: "a" }, repository: "team-a" },
  { name: "an In expression matches", namespace: "cards", labels: { compliance: "pci" }, repository: "regulated" },
  { name: "anything else falls to the default", namespace: "media", labels: { team: "b" }, repository: "shared" },
  {
    name: "two matching selectors are no answer",
    namespace: "mixed",
    labels: { team: "a", compliance: "hipaa" },
    reason: /more than one repository \(team-a, regulated\)/,
  },
  { name: "unknown labels are no answer while selectors decide", namespace: "new", labels: undefined, reason: /labels of namespace new are not known/ },
];
for (const row of rows) {
  test(`repositoryForNamespace: ${row.name}`, () => {
    const choice = repositoryForNamespace(scopes, row.namespace, row.labels);
    if (row.repository !== undefined) assert.deepEqual(choice.ok && choice.repository, row.repository);
    else assert.match(choice.ok ? "" : choice.reason, row.reason!);
  });
}

test("without a default an unmapped namespace has no repository, and one repository without selectors needs no labels", () => {
  const noDefault = scopes.filter((s) => !s.isDefault);
  assert.match(
    String(!repositoryForNamespace(noDefault, "media", {}).ok && (repositoryForNamespace(noDefault, "media", {}) as { reason: string }).reason),
    /no repository is mapped to namespace media/,
  );
  assert.deepEqual(repositoryForNamespace([{ name: "only", isDefault: true }], "media", undefined), {
    ok: true,
    repository: "only",
    because: "it is the default repository",
  });
});

test("matchesLabelSelector follows Kubernetes semantics for each operator", () => {
  const labels = { team: "a", tier: "gold" };
  assert.equal(matchesLabelSelector({}, labels), true, "an empty selector matches everything");
  assert.equal(matchesLabelSelector({ matchLabels: { team: "a", tier: "gold" } }, labels), true);
  assert.equal(matchesLabelSelector({ matchLabels: { team: "b" } }, labels), false);
  assert.equal(matchesLabelSelector({ matchExpressions: [{ key: "team", operator: "NotIn", values: ["b"] }] }, labels), true);
  assert.equal(matchesLabelSelector({ matchExpressions: [{ key: "team", operator: "NotIn", values: ["a"] }] }, labels), false);
  assert.equal(matchesLabelSelector({ matchExpressions: [{ key: "absent", operator: "NotIn", values: ["a"] }] }, labels), true);
  assert.equal(matchesLabelSelector({ matchExpressions: [{ key: "tier", operator: "Exists" }] }, labels), true);
  assert.equal(matchesLabelSelector({ matchExpressions: [{ key: "tier", operator: "DoesNotExist" }] }, labels), false);
  assert.equal(matchesLabelSelector({ matchExpressions: [{ key: "absent", operator: "In", values: [""] }] }, labels), false);
});

test("repositoryScopeProblems lists duplicate names, two defaults and a namespace listed twice", () => {
  assert.deepEqual(repositoryScopeProblems(scopes), []);
  assert.deepEqual(
    repositoryScopeProblems([
      { name: "a", isDefault: true, namespaces: ["x"] },
      { name: "a", isDefault: true },
      { name: "b", namespaces: ["x"] },
    ]),
    ["repository name a is used twice", "more than one default repository (a, a)", "namespace x is listed for both a and b"],
  );
});
