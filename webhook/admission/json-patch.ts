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
