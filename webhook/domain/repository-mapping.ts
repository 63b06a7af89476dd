// Which Kopia repository serves a namespace. A cluster may keep several repositories, each with
// its own password, so that a namespace only ever receives the credentials of the repository it
// is mapped to: one leaked Secret then opens one group's backups, not every namespace's.
//
// Rules, in order: a namespace named in a repository's `namespaces` list belongs to it; else the
// repositories whose `namespaceSelector` matches the namespace's labels (exactly one may); else
// the default repository. Two matching selectors, or selectors that cannot be evaluated because
// the namespace's labels are unknown, are no answer at all: the PVC's decision is then `unknown`,
// since guessing could restore another group's data or hand out another group's password.

export type LabelSelectorRequirement = { key: string; operator: "In" | "NotIn" | "Exists" | "DoesNotExist"; values?: readonly string[] };
export type LabelSelector = { matchLabels?: Readonly<Record<string, string>>; matchExpressions?: readonly LabelSelectorRequirement[] };

export type RepositoryScope = {
  name: string;
  namespaces?: readonly string[];
  namespaceSelector?: LabelSelector;
  isDefault?: boolean;
};

export type RepositoryChoice = { ok: true; repository: string; because: string } | { ok: false; reason: string };

/** Kubernetes label selector semantics: every matchLabels pair and every expression must hold. */
export function matchesLabelSelector(selector: LabelSelector, labels: Readonly<Record<string, string>>): boolean {
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) if (labels[key] !== value) return false;
  for (const requirement of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, requirement.key);
    const value = labels[requirement.key];
    const values = requirement.values ?? [];
    switch (requirement.operator) {
      case "In":
        if (!has || !values.includes(value!)) return false;
        break;
      case "NotIn":
        if (has && values.includes(value!)) return false;
        break;
      case "Exists":
        if (!has) return false;
        break;
      case "DoesNotExist":
        if (has) return false;
        break;
    }
  }
  return true;
}

/**
 * The repository for `namespace`. `labels` is undefined when the namespace's labels are not known
 * (not yet read, or the namespace is gone); that only matters when a selector would decide.
 */
export function repositoryForNamespace(
  scopes: readonly RepositoryScope[],
  namespace: string,
  labels: Readonly<Record<string, string>> | undefined,
): RepositoryChoice {
  const named = scopes.filter((scope) => scope.namespaces?.includes(namespace));
  if (named.length === 1) return { ok: true, repository: named[0]!.name, because: `namespace ${namespace} is listed for it` };
  if (named.length > 1) {
    return { ok: false, reason: `namespace ${namespace} is listed for more than one repository (${named.map((s) => s.name).join(", ")})` };
  }
  const selecting = scopes.filter((scope) => scope.namespaceSelector !== undefined);
  if (selecting.length > 0) {
    if (labels === undefined)
      return { ok: false, reason: `the labels of namespace ${namespace} are not known yet, and a repository is chosen by namespace labels` };
    const matching = selecting.filter((scope) => matchesLabelSelector(scope.namespaceSelector!, labels));
    if (matching.length === 1) return { ok: true, repository: matching[0]!.name, because: `namespace ${namespace} matches its namespaceSelector` };
    if (matching.length > 1) {
      return {
        ok: false,
        reason: `namespace ${namespace} matches the namespaceSelector of more than one repository (${matching.map((s) => s.name).join(", ")})`,
      };
    }
  }
  const fallback = scopes.find((scope) => scope.isDefault);
  if (fallback) return { ok: true, repository: fallback.name, because: "it is the default repository" };
  return { ok: false, reason: `no repository is mapped to namespace ${namespace}, and none is the default` };
}

/** Problems a set of scopes has whatever the namespaces' labels: for start-up validation. */
export function repositoryScopeProblems(scopes: readonly RepositoryScope[]): string[] {
  const problems: string[] = [];
  const names = new Set<string>();
  for (const scope of scopes) {
    if (names.has(scope.name)) problems.push(`repository name ${scope.name} is used twice`);
    names.add(scope.name);
  }
  const defaults = scopes.filter((scope) => scope.isDefault);
  if (defaults.length > 1) problems.push(`more than one default repository (${defaults.map((s) => s.name).join(", ")})`);
  const listedBy = new Map<string, string>();
  for (const scope of scopes) {
    for (const namespace of scope.namespaces ?? []) {
      const earlier = listedBy.get(namespace);
      if (earlier !== undefined) problems.push(`namespace ${namespace} is listed for both ${earlier} and ${scope.name}`);
      listedBy.set(namespace, scope.name);
    }
  }
  return problems;
}
