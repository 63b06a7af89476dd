// A single pass over the raw bytes of a JSON body, before JSON.parse, that bounds what parsing can
// cost. JSON.parse has no depth or size limit of its own: 2.5 million nested arrays in a 4.8 MiB
// body exhaust a 192 MB heap while it runs, and a body of a million tiny values builds a million
// objects. Counting brackets and commas outside strings is linear, allocates nothing and needs no
// tokenizer: every structural character of JSON is ASCII, and UTF-8 never encodes another
// character with a byte below 0x80, so multi-byte text cannot be mistaken for one.

export type JsonShapeLimits = {
  /** Deepest nesting of arrays and objects. An AdmissionReview of a PVC nests about 10 deep. */
  maxDepth: number;
  /** Arrays and objects plus the commas between their members: an upper bound on parsed values. */
  maxValues: number;
};

export type JsonShapeProblem = { problem: "too-deep"; limit: number } | { problem: "too-many-values"; limit: number };

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const COMMA = 0x2c;

/** undefined when the body is within the limits (it may still be invalid JSON: JSON.parse says so). */
export function checkJsonShape(bytes: Uint8Array, limits: JsonShapeLimits): JsonShapeProblem | undefined {
  let depth = 0;
  let values = 0;
  let isInString = false;
  for (let index = 0; index < bytes.length; index += 1) {
    const byte = bytes[index]!;
    if (isInString) {
      if (byte === BACKSLASH) index += 1;
      else if (byte === QUOTE) isInString = false;
      continue;
    }
    switch (byte) {
      case QUOTE:
        isInString = true;
        break;
      case OPEN_ARRAY:
      case OPEN_OBJECT:
        depth += 1;
        if (depth > limits.maxDepth) return { problem: "too-deep", limit: limits.maxDepth };
        values += 1;
        if (values > limits.maxValues) return { problem: "too-many-values", limit: limits.maxValues };
        break;
      case CLOSE_ARRAY:
      case CLOSE_OBJECT:
        depth -= 1;
        break;
      case COMMA:
        values += 1;
        if (values > limits.maxValues) return { problem: "too-many-values", limit: limits.maxValues };
        break;
    }
  }
  return undefined;
}
