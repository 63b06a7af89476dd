import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { describe, it } from "node:test";
import { mergeManifestEntries, parseManifestContent, parseTimestampNs } from "../../../webhook/kopia/manifest-entries.ts";
import { isRepositoryError } from "../../../webhook/kopia/repository-error.ts";
import { toSnapshotManifest } from "../../../webhook/kopia/snapshot-manifest.ts";
import { formatSnapshotListJson, goJson } from "../../../webhook/kopia/snapshot-list-output.ts";
import { readFileSync } from "node:fs";

const content = (entries: unknown[], key = "entries") => gzipSync(JSON.stringify({ [key]: entries }));
const snapshotLabels = { type: "snapshot", hostname: "ns", username: "app", path: "/data" };

describe("manifest contents", () => {
  it("keeps every nanosecond digit of a timestamp", () => {
    assert.equal(parseTimestampNs("2026-01-23T12:38:26.123456789Z", "t") - parseTimestampNs("2026-01-23T12:38:26.123456788Z", "t"), 1n);
    assert.equal(parseTimestampNs("2026-01-23T12:38:26Z", "t"), 1769171906000000000n);
    assert.equal(parseTimestampNs("2026-01-23T13:38:26.5+01:00", "t"), 1769171906500000000n);
    assert.throws(
      () => parseTimestampNs("yesterday", "t"),
      (e) => isRepositoryError(e, "corrupt"),
    );
  });

  it("reads the entries list whatever the case of its key", () => {
    const entries = parseManifestContent(content([{ id: "a", labels: { type: "x" }, modified: "2026-01-01T00:00:00Z", data: {} }], "Entries"), "c");
    assert.equal(entries[0]!.id, "a");
  });

  it("refuses content that is not gzipped JSON", () => {
    assert.throws(
      () => parseManifestContent(Buffer.from("{}"), "c"),
      (e) => isRepositoryError(e, "corrupt"),
    );
    assert.throws(
      () => parseManifestContent(gzipSync("{}"), "c"),
      (e) => isRepositoryError(e, "corrupt"),
    );
  });

  it("keeps the version modified last, by nanoseconds, and drops deleted manifests", () => {
    const older = parseManifestContent(
      content([
        { id: "a", labels: snapshotLabels, modified: "2026-01-01T00:00:00.000000002Z", data: { v: "a-new" } },
        { id: "b", labels: snapshotLabels, modified: "2026-01-01T00:00:00Z", data: { v: "b" } },
        { id: "c", labels: snapshotLabels, modified: "2026-01-01T00:00:00Z", data: { v: "c" } },
      ]),
      "one",
    );
    const newer = parseManifestContent(
      content([
        { id: "a", labels: snapshotLabels, modified: "2026-01-01T00:00:00.000000001Z", data: { v: "a-old" } },
        { id: "b", labels: snapshotLabels, modified: "2026-01-01T00:00:01Z", deleted: true },
      ]),
      "two",
    );
    const merged = mergeManifestEntries([older, newer]);
    assert.deepEqual([...merged.keys()].sort(), ["a", "c"]);
    assert.deepEqual(merged.get("a")!.data, { v: "a-new" });
  });
});

describe("snapshot manifests", () => {
  it("flags a checkpoint manifest as incomplete and lists the field where kopia puts it", () => {
    const data = {
      id: "",
      source: { host: "ns", userName: "app", path: "/data" },
      description: "",
      startTime: "2026-01-01T00:00:00.5Z",
      endTime: "2026-01-01T00:10:00Z",
      stats: { totalSize: 1 },
      incomplete: "checkpoint",
      rootEntry: { name: "data" },
    };
    const snapshot = toSnapshotManifest({ id: "c0ffee", labels: snapshotLabels, modifiedNs: 0n, deleted: false, data });
    assert.equal(snapshot.incompleteReason, "checkpoint");
    assert.equal(snapshot.startTimeNs, 1767225600500000000n);
    assert.equal(
      formatSnapshotListJson([snapshot]),
      '[\n {"id":"c0ffee","source":{"host":"ns","userName":"app","path":"/data"},"description":"","startTime":"2026-01-01T00:00:00.5Z","endTime":"2026-01-01T00:10:00Z","stats":{"totalSize":1},"incomplete":"checkpoint","rootEntry":{"name":"data"}}\n]',
    );
  });

  it("refuses a snapshot manifest without a source", () => {
    assert.throws(
      () => toSnapshotManifest({ id: "x", labels: snapshotLabels, modifiedNs: 0n, deleted: false, data: { startTime: "2026-01-01T00:00:00Z" } }),
      (e) => isRepositoryError(e, "corrupt"),
    );
  });
});

describe("snapshot listing output", () => {
  it("escapes strings the way Go's encoding/json does", () => {
    assert.equal(goJson({ p: '/data/<a>&"b"\n\u2028é' }), '{"p":"/data/\\u003ca\\u003e\\u0026\\"b\\"\\n\\u2028é"}');
  });

  it("reproduces real kopia output from the manifests it was made of", () => {
    const expected = readFileSync(new URL("./fixtures/kopia-exporter-sample/snapshot-list-excerpt.json", import.meta.url), "utf8");
    const listed = JSON.parse(expected) as Record<string, unknown>[];
    const snapshots = listed.map(({ id, retentionReason: _computed, ...stored }, i) =>
      toSnapshotManifest({ id: id as string, labels: snapshotLabels, modifiedNs: BigInt(i), deleted: false, data: { id: "", ...stored } }),
    );
    const withoutRetention = "[\n " + listed.map(({ retentionReason: _computed, ...rest }) => JSON.stringify(rest)).join(",\n ") + "\n]";
    assert.equal(formatSnapshotListJson(snapshots.reverse()), withoutRetention);
    assert.equal(formatSnapshotListJson([]), "[\n]");
  });
});
