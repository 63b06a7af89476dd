import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

// Every value the server runs with is set in config.ts (policy values in domain/policy.ts), and
// modules take them as required options. A fallback inside a module (`options.x ?? 5`,
// `deps.y === true`, `?? LOCAL_DEFAULT`) would be a second default that config.ts cannot see, so
// this reads every source file for one.

const webhookDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../webhook");

/** The homes of defaults. */
const DEFAULT_HOMES = new Set(["config.ts", path.join("domain", "policy.ts")]);

/**
 * Fallbacks known to remain, by file and option, each with why. An entry that no longer matches
 * fails the test too, so the list only shrinks.
 */
const KNOWN_EXCEPTIONS: Record<string, { options: string[]; why: string }> = {};

const LITERAL = String.raw`-?\d[\d_]*(?:\.\d+)?|"[^"]*"|'[^']*'|\x60[^\x60]*\x60|true|false`;
/** `options.x ?? <literal>`, `deps.x ?? SOME_CONSTANT`, `options.x === true` on an options object. */
const FALLBACK = new RegExp(
  String.raw`\b(?:options|deps|opts|settings|limits|input)\??\.(\w+)\s*(?:\?\?\s*(?:(${LITERAL})|([A-Z][A-Z0-9_]+)\b)|===\s*(?:true|false)\b)`,
  "g",
);

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith(".ts") ? [full] : [];
  });
}

/** The options a file falls back on, with the line of each. */
function fallbacksIn(text: string): { option: string; line: string }[] {
  const found: { option: string; line: string }[] = [];
  for (const match of text.matchAll(FALLBACK)) {
    const [whole, option, , constant] = match;
    // A constant counts only when the file defines it: one imported from config.ts is the default's home.
    if (constant !== undefined && !new RegExp(String.raw`\bconst\s+${constant}\b`).test(text)) continue;
    found.push({ option: option!, line: whole.trim() });
  }
  return found;
}

describe("option defaults", () => {
  const files = sourceFiles(webhookDir).map((file) => path.relative(webhookDir, file));

  it("finds the source files it checks", () => {
    assert.ok(files.length > 20, `only ${files.length} files found under ${webhookDir}`);
    for (const known of Object.keys(KNOWN_EXCEPTIONS)) assert.ok(files.includes(known), `${known} is listed as an exception but does not exist`);
  });

  it("recognises the fallbacks it forbids", () => {
    const sample = [
      "const intervalMs = options.reconcileIntervalMs ?? 60_000;",
      'const schedule = deps.schedule ?? "*/15 * * * *";',
      "const dryRun = options?.dryRun ?? false;",
      "const name = options.leaseName ?? DEFAULT_LEASE_NAME;",
      "const DEFAULT_LEASE_NAME = 'x';",
      "if (deps.adoptKyverno === true) {}",
    ].join("\n");
    assert.deepEqual(
      fallbacksIn(sample).map((found) => found.option),
      ["reconcileIntervalMs", "schedule", "dryRun", "leaseName", "adoptKyverno"],
    );
    assert.deepEqual(fallbacksIn('import { DEFAULT_S3_ADDRESSING } from "../config.ts";\nconst a = options.addressing ?? DEFAULT_S3_ADDRESSING;'), []);
    assert.deepEqual(fallbacksIn('const labels = object.metadata.labels ?? {};\nconst namespace = pvc.namespace ?? "";'), []);
  });

  it("leaves no fallback on an option outside config.ts and domain/policy.ts", () => {
    const unexpected: string[] = [];
    for (const file of files) {
      if (DEFAULT_HOMES.has(file)) continue;
      const allowed = new Set(KNOWN_EXCEPTIONS[file]?.options ?? []);
      for (const { option, line } of fallbacksIn(readFileSync(path.join(webhookDir, file), "utf8"))) {
        if (!allowed.has(option)) unexpected.push(`${file}: ${line}`);
      }
    }
    assert.deepEqual(unexpected, [], "set these values in config.ts and make the options required");
  });

  it("lists only exceptions that still exist", () => {
    for (const [file, { options }] of Object.entries(KNOWN_EXCEPTIONS)) {
      const present = new Set(fallbacksIn(readFileSync(path.join(webhookDir, file), "utf8")).map((found) => found.option));
      const gone = options.filter((option) => !present.has(option));
      assert.deepEqual(gone, [], `${file} no longer falls back on these; remove them from KNOWN_EXCEPTIONS`);
    }
  });
});
