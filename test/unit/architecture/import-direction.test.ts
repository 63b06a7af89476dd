import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

// Dependencies point inward, toward domain/ (style.md). This reads the import lines of every
// source file, so a new file that breaks the direction fails here, not in review.

const webhookDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../webhook");

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith(".ts") ? [full] : [];
  });
}

function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  return [...text.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+["']([^"']+)["']/gm)].map((match) => match[1]!);
}

const layerOf = (file: string): string => path.relative(webhookDir, file).split(path.sep)[0]!;

describe("import direction", () => {
  const files = sourceFiles(webhookDir);

  it("finds the source files it checks", () => {
    assert.ok(files.length > 20, `only ${files.length} files found under ${webhookDir}`);
  });

  it("keeps domain/ pure: no I/O modules, no other layer, no Kubernetes client", () => {
    const forbidden = /^(node:(fs|net|http|https|tls|child_process|dgram|dns|worker_threads)|@kubernetes|hono|@hono|pino|prom-client)/;
    for (const file of files.filter((f) => layerOf(f) === "domain")) {
      for (const specifier of importsOf(file)) {
        assert.ok(!forbidden.test(specifier), `${path.relative(webhookDir, file)} imports ${specifier}`);
        if (specifier.startsWith(".")) {
          const target = path.resolve(path.dirname(file), specifier);
          assert.equal(layerOf(target), "domain", `${path.relative(webhookDir, file)} imports ${specifier} outside domain/`);
        }
      }
    }
  });

  it("keeps domain/logger.ts to types: domain/ names the logging port, it never logs", () => {
    const file = path.join(webhookDir, "domain", "logger.ts");
    const code = readFileSync(file, "utf8").replace(/\/\/.*$/gm, "");
    assert.ok(!/\b(function|class|const|let|var|new|import)\b/.test(code), "domain/logger.ts holds runtime code");
    for (const [statement] of code.matchAll(/^export\b.*$/gm)) assert.match(statement, /^export type /);
  });

  it("lets only kube/ import @kubernetes/client-node", () => {
    for (const file of files.filter((f) => layerOf(f) !== "kube")) {
      for (const specifier of importsOf(file)) {
        assert.ok(!specifier.startsWith("@kubernetes/"), `${path.relative(webhookDir, file)} imports ${specifier}`);
      }
    }
  });

  it("keeps admission/ free of transport and adapters", () => {
    for (const file of files.filter((f) => layerOf(f) === "admission")) {
      for (const specifier of importsOf(file)) {
        assert.ok(!/^(hono|@hono|node:https|node:http)$/.test(specifier), `${path.relative(webhookDir, file)} imports ${specifier}`);
        if (specifier.startsWith(".")) {
          const layer = layerOf(path.resolve(path.dirname(file), specifier));
          assert.ok(["admission", "domain"].includes(layer), `${path.relative(webhookDir, file)} imports ${specifier} from ${layer}/`);
        }
      }
    }
  });

  it("reads process.env only in config.ts, main.ts and the CLI entry point", () => {
    const allowed = new Set(["config.ts", "main.ts", path.join("cli", "main.ts")]);
    for (const file of files) {
      const relative = path.relative(webhookDir, file);
      if (allowed.has(relative)) continue;
      assert.ok(!/process\.env\b/.test(readFileSync(file, "utf8")), `${relative} reads process.env`);
    }
  });
});
