import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createProcessLogger } from "../../webhook/main.ts";

// The log lines as an operator's tooling reads them: through the real pino, into a stream.

function capture() {
  const written: string[] = [];
  return {
    stream: { write: (chunk: string) => void written.push(chunk) },
    written,
    lines: () => written.map((chunk) => JSON.parse(chunk) as Record<string, unknown>),
  };
}

describe("the process logger", () => {
  it("writes one JSON line per entry with the level as a word and an ISO-8601 UTC time", () => {
    const out = capture();
    const log = createProcessLogger("info", out.stream);
    const beforeMs = Date.now();
    log.info({ kind: "ReplicationSource", namespace: "media", name: "app-data-backup", pvc: "app-data" }, "generated object created");
    assert.equal(out.written.length, 1);
    assert.ok(out.written[0]!.endsWith("\n") && !out.written[0]!.slice(0, -1).includes("\n"));
    const [line] = out.lines();
    assert.equal(line!["level"], "info");
    assert.match(String(line!["time"]), /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    assert.ok(Date.parse(String(line!["time"])) >= beforeMs - 1_000 && Date.parse(String(line!["time"])) <= Date.now() + 1_000);
    assert.equal(line!["msg"], "generated object created");
    assert.equal(line!["service"], "pvc-guardian");
    assert.deepEqual([line!["kind"], line!["namespace"], line!["name"], line!["pvc"]], ["ReplicationSource", "media", "app-data-backup", "app-data"]);
  });

  it("logs a thrown error under err with its type, message, own fields and stack", () => {
    const out = capture();
    const log = createProcessLogger("info", out.stream);
    const error = Object.assign(new TypeError("the list was cut short"), { status: 500 });
    log.error({ err: error }, "reconcile pass failed");
    const [line] = out.lines();
    assert.equal(line!["level"], "error");
    const err = line!["err"] as Record<string, unknown>;
    assert.equal(err["type"], "TypeError");
    assert.equal(err["message"], "the list was cut short");
    assert.equal(err["status"], 500);
    assert.equal(err["stack"], error.stack);
    assert.match(String(err["stack"]), /\n\s+at /);
  });

  it("writes a child's bindings once on each of its lines", () => {
    const out = capture();
    const log = createProcessLogger("info", out.stream).child({ controller: "reconciler", reconcileId: "6f1c" });
    log.warn({ kind: "Secret", namespace: "pvc-guardian", name: "kopia-credentials" }, "source secret missing");
    assert.equal(out.written[0]!.split('"controller":').length, 2);
    const [line] = out.lines();
    assert.equal(line!["level"], "warn");
    assert.equal(line!["controller"], "reconciler");
    assert.equal(line!["reconcileId"], "6f1c");
  });

  it("leaves out lines below its level", () => {
    const out = capture();
    const log = createProcessLogger("warn", out.stream);
    log.info({}, "using the Kubernetes API");
    log.debug({}, "snapshot catalog refreshed");
    log.warn({}, "no Kopia repository is configured");
    assert.deepEqual(
      out.lines().map((line) => line["level"]),
      ["warn"],
    );
  });
});
