import type { Policy, Tier } from "./policy.ts";
import { BACKUP_LABEL } from "./wire-names.ts";

// Whether a PVC is ours: its `backup` label names a configured tier, exactly (values are
// case-sensitive), and its namespace is not excluded.

export type Protection =
  | { kind: "protected"; tierName: string; tier: Tier }
  | { kind: "unlabelled" }
  | { kind: "excluded-namespace"; namespace: string }
  /** Labelled, but with a value that names no tier: not ours, and worth a warning. */
  | { kind: "unknown-tier"; value: string; warning: string };

export function resolveProtection(
  labels: Readonly<Record<string, string>> | undefined,
  namespace: string,
  policy: Pick<Policy, "tiers" | "excludedNamespaces">,
): Protection {
  const value = labels?.[BACKUP_LABEL];
  if (value === undefined) return { kind: "unlabelled" };
  if (policy.excludedNamespaces.includes(namespace)) return { kind: "excluded-namespace", namespace };
  const tier = Object.hasOwn(policy.tiers, value) ? policy.tiers[value] : undefined;
  if (tier) return { kind: "protected", tierName: value, tier };
  const tierNames = Object.keys(policy.tiers);
  const nearMiss = tierNames.find((name) => name.toLowerCase() === value.trim().toLowerCase());
  const hint = nearMiss ? ` Did you mean "${nearMiss}"? Tier names are case-sensitive.` : "";
  return {
    kind: "unknown-tier",
    value,
    warning:
      `label ${BACKUP_LABEL}="${value}" names no configured backup tier (${tierNames.join(", ")}), ` + `so this PVC is NOT backed up or restored.${hint}`,
  };
}
