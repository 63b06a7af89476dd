// RFC 6902 JSON Patch operations as the API server applies them, with RFC 6901 pointers.

export type JsonPatchOperation =
  { op: "add" | "replace"; path: string; value: unknown } | { op: "remove"; path: string } | { op: "test"; path: string; value: unknown };

/** Escapes one reference token: `~` first, then `/`, as RFC 6901 section 4 requires. */
export function escapePointerToken(token: string): string {
  return token.replaceAll("~", "~0").replaceAll("/", "~1");
}

export function jsonPointer(...tokens: readonly string[]): string {
  return tokens.map((token) => `/${escapePointerToken(token)}`).join("");
}

export function encodePatch(operations: readonly JsonPatchOperation[]): string {
  return Buffer.from(JSON.stringify(operations), "utf8").toString("base64");
}

/**
 * Applies the `add` operations pvc-guardian's mutator makes to a copy of `document`, as the API
 * server would, so that `plan` can show the validator the object it will really see. Any other
 * operation, or a path whose parent does not exist, throws: the mutator never makes one.
 */
export function applyAddOperations<T>(document: T, operations: readonly JsonPatchOperation[]): T {
  const copy = structuredClone(document) as unknown;
  for (const operation of operations) {
    if (operation.op !== "add") throw new Error(`only add operations can be applied here, not ${operation.op}`);
    const tokens = operation.path
      .split("/")
      .slice(1)
      .map((token) => token.replaceAll("~1", "/").replaceAll("~0", "~"));
    const last = tokens.pop();
    let parent: unknown = copy;
    for (const token of tokens) parent = isObject(parent) ? parent[token] : undefined;
    if (last === undefined || !isObject(parent)) throw new Error(`the parent of ${operation.path} is not an object`);
    parent[last] = structuredClone(operation.value);
  }
  return copy as T;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
