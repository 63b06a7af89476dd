import { LABEL_MANAGED_BY, MANAGED_BY_GUARDIAN, MANAGED_BY_KYVERNO } from "./wire-names.ts";

// Whose a generated-looking object is, from its managed-by label: ours, the Kyverno policy's
// (adoptable when the operator asks for it), or someone else's (never touched). One rule for
// admission, the reconciler and the sweeper.

export type Ownership = "ours" | "kyverno" | "foreign";

export function ownershipOf(labels: Readonly<Record<string, string>> | undefined): Ownership {
  const managedBy = labels?.[LABEL_MANAGED_BY];
  if (managedBy === MANAGED_BY_GUARDIAN) return "ours";
  if (managedBy === MANAGED_BY_KYVERNO) return "kyverno";
  return "foreign";
}

/** Whether pvc-guardian may change or delete it: its own, or Kyverno's when adoption is on. */
export function mayManage(labels: Readonly<Record<string, string>> | undefined, adoptKyverno: boolean): boolean {
  const ownership = ownershipOf(labels);
  return ownership === "ours" || (ownership === "kyverno" && adoptKyverno);
}
