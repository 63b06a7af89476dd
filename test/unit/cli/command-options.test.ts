import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseCommandOptions } from "../../../webhook/cli/command-options.ts";

const usage = "usage: pvc-guardian example --name <name> [--output table|json]\n";
const options = {
  name: { type: "string" },
  output: { type: "string", short: "o", default: "table" },
  help: { type: "boolean", short: "h" },
} as const;

function parse(args: string[]) {
  const printed = { stdout: "", stderr: "" };
  const parsed = parseCommandOptions(args, options, usage, { stdout: (text) => (printed.stdout += text), stderr: (text) => (printed.stderr += text) });
  return { parsed, ...printed };
}

describe("parseCommandOptions", () => {
  it("gives the values, with defaults, and prints nothing", () => {
    const plain = parse(["--name", "x"]);
    assert.deepEqual([plain.stdout, plain.stderr], ["", ""]);
    assert.ok(plain.parsed.ok);
    assert.deepEqual({ ...plain.parsed.values }, { name: "x", output: "table" });
    const short = parse(["--name=x", "-o", "json"]).parsed;
    assert.ok(short.ok);
    assert.deepEqual({ ...short.values }, { name: "x", output: "json" });
  });

  for (const args of [["-h"], ["--help"], ["--name", "x", "--help"]]) {
    it(`prints the usage on stdout and ends with 0 for ${args.join(" ")}`, () => {
      assert.deepEqual(parse(args), { parsed: { ok: false, exitCode: 0 }, stdout: usage, stderr: "" });
    });
  }

  const usageErrors = [
    { args: ["--bogus"], problem: /bogus/ },
    { args: ["--name"], problem: /--name/ },
    { args: ["stray"], problem: /stray/ },
  ];
  for (const { args, problem } of usageErrors) {
    it(`prints what is wrong and the usage on stderr and ends with 2 for ${args.join(" ")}`, () => {
      const { parsed, stdout, stderr } = parse(args);
      assert.deepEqual(parsed, { ok: false, exitCode: 2 });
      assert.equal(stdout, "");
      assert.match(stderr, problem);
      assert.ok(stderr.endsWith(`\n${usage}`), stderr);
    });
  }
});
