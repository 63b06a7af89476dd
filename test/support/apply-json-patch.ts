// A small RFC 6902 JSON Patch applier for tests: add, replace, remove and test, with RFC 6901
// pointers. It applies a patch the way the API server does (all or nothing, on a copy), so a
// test can check the object a mutating webhook actually produces rather than the patch text.

export type AppliedPatch = { ok: true; document: unknown } | { ok: false; error: string };

type Operation = { op: string; path: string; value?: unknown; from?: string };

/** Splits an RFC 6901 pointer into unescaped tokens: `~1` becomes `/`, then `~0` becomes `~`. */
export function parsePointer(pointer: string): string[] {
  if (pointer === "") return [];
  if (!pointer.startsWith("/")) throw new Error(`pointer "${pointer}" does not start with "/"`);
  return pointer
    .slice(1)
    .split("/")
    .map((token) => {
      if (/~[^01]|~$/.test(token)) throw new Error(`pointer "${pointer}" has an invalid escape`);
      return token.replaceAll("~1", "/").replaceAll("~0", "~");
    });
}

function isContainer(value: unknown): value is Record<string, unknown> | unknown[] {
  return typeof value === "object" && value !== null;
}

function arrayIndex(array: unknown[], token: string, forAdd: boolean): number {
  if (forAdd && token === "-") return array.length;
  if (!/^(0|[1-9]\d*)$/.test(token)) throw new Error(`"${token}" is not an array index`);
  const index = Number(token);
  if (index > array.length || (!forAdd && index === array.length)) throw new Error(`index ${index} is out of range`);
  return index;
}

function parentOf(document: unknown, tokens: string[]): Record<string, unknown> | unknown[] {
  let node = document;
  for (const token of tokens.slice(0, -1)) {
    if (Array.isArray(node)) node = node[arrayIndex(node, token, false)];
    else if (isContainer(node) && Object.hasOwn(node, token)) node = (node as Record<string, unknown>)[token];
    else throw new Error(`path component "${token}" does not exist`);
  }
  if (!isContainer(node)) throw new Error("the parent of the target is not an object or array");
  return node;
}

function valueAt(document: unknown, tokens: string[]): unknown {
  if (tokens.length === 0) return document;
  const parent = parentOf(document, tokens);
  const last = tokens.at(-1)!;
  if (Array.isArray(parent)) return parent[arrayIndex(parent, last, false)];
  if (!Object.hasOwn(parent, last)) throw new Error(`"${last}" does not exist`);
  return parent[last];
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((item, i) => deepEqual(item, b[i]));
  }
  if (!isContainer(a) || !isContainer(b)) return false;
  const aKeys = Object.keys(a);
  const bKeys = Object.keys(b);
  return (
    aKeys.length === bKeys.length &&
    aKeys.every((key) => Object.hasOwn(b, key) && deepEqual((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key]))
  );
}

function applyOne(document: unknown, operation: Operation): unknown {
  const tokens = parsePointer(operation.path);
  switch (operation.op) {
    case "add":
    case "replace": {
      if (!Object.hasOwn(operation, "value")) throw new Error(`${operation.op} without a value`);
      const value = structuredClone(operation.value);
      if (tokens.length === 0) return value;
      const parent = parentOf(document, tokens);
      const last = tokens.at(-1)!;
      if (Array.isArray(parent)) {
        const index = arrayIndex(parent, last, operation.op === "add");
        if (operation.op === "add") parent.splice(index, 0, value);
        else parent[index] = value;
      } else {
        if (operation.op === "replace" && !Object.hasOwn(parent, last)) throw new Error(`replace of missing "${last}"`);
        parent[last] = value;
      }
      return document;
    }
    case "remove": {
      if (tokens.length === 0) throw new Error("remove of the whole document");
      const parent = parentOf(document, tokens);
      const last = tokens.at(-1)!;
      if (Array.isArray(parent)) parent.splice(arrayIndex(parent, last, false), 1);
      else if (Object.hasOwn(parent, last)) delete parent[last];
      else throw new Error(`remove of missing "${last}"`);
      return document;
    }
    case "test":
      if (!deepEqual(valueAt(document, tokens), operation.value)) throw new Error(`test failed at "${operation.path}"`);
      return document;
    default:
      throw new Error(`unsupported op "${operation.op}"`);
  }
}

/** Applies `patch` to a copy of `document`; the original is never changed. */
export function applyJsonPatch(document: unknown, patch: unknown): AppliedPatch {
  if (!Array.isArray(patch)) return { ok: false, error: "a JSON Patch is an array of operations" };
  let result = structuredClone(document);
  try {
    for (const operation of patch as Operation[]) {
      if (typeof operation !== "object" || operation === null || typeof operation.path !== "string") throw new Error("malformed operation");
      result = applyOne(result, operation);
    }
  } catch (error) {
    return { ok: false, error: (error as Error).message };
  }
  return { ok: true, document: result };
}

/** Decodes an AdmissionReview's base64 `patch` and applies it. */
export function applyAdmissionPatch(document: unknown, base64Patch: string): AppliedPatch {
  return applyJsonPatch(document, JSON.parse(Buffer.from(base64Patch, "base64").toString("utf8")));
}
