// The output of `kopia snapshot list --all --json`, reproduced byte for byte (without the
// retention reasons, which kopia computes from policy at listing time and never stores), so that
// anyone with the kopia binary can diff the two listings.

import { type SnapshotManifest, sortSnapshotsLikeKopia, sourceIdentity } from "./snapshot-manifest.ts";

/** Go's encoding/json string escaping, HTML-safe characters included. */
function goJsonString(text: string): string {
  let out = '"';
  for (const char of text) {
    const code = char.codePointAt(0)!;
    if (char === '"') out += '\\"';
    else if (char === "\\") out += "\\\\";
    else if (char === "\n") out += "\\n";
    else if (char === "\r") out += "\\r";
    else if (char === "\t") out += "\\t";
    else if (char === "\b") out += "\\b";
    else if (char === "\f") out += "\\f";
    else if (code < 0x20 || char === "<" || char === ">" || char === "&" || code === 0x2028 || code === 0x2029) {
      out += "\\u" + code.toString(16).padStart(4, "0");
    } else out += char;
  }
  return out + '"';
}

/** Compact JSON as Go's json.Marshal writes it, keeping the key order of `value`. */
export function goJson(value: unknown): string {
  if (value === null || value === undefined) return "null";
  if (typeof value === "string") return goJsonString(value);
  if (typeof value === "number" || typeof value === "boolean") return JSON.stringify(value);
  if (Array.isArray(value)) return "[" + value.map(goJson).join(",") + "]";
  if (typeof value === "object") {
    const fields = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    return "{" + fields.map(([key, v]) => goJsonString(key) + ":" + goJson(v)).join(",") + "}";
  }
  throw new TypeError(`cannot encode ${typeof value} as JSON`);
}

/**
 * One listing entry: the stored manifest data with its manifest ID filled in and, last, the
 * retention reasons when there are any.
 */
export function snapshotListEntry(snapshot: SnapshotManifest, retentionReasons?: readonly string[]): Record<string, unknown> {
  const { id: _storedEmpty, ...rest } = snapshot.data;
  return { id: snapshot.id, ...rest, ...(retentionReasons?.length ? { retentionReason: retentionReasons } : {}) };
}

/**
 * Exactly what `kopia snapshot list --all --json` prints; without retention reasons, what it
 * prints with `--no-retention`.
 */
export function formatSnapshotListJson(snapshots: readonly SnapshotManifest[], retentionReasons?: ReadonlyMap<string, readonly string[]>): string {
  const entries = sortSnapshotsLikeKopia(snapshots).map((s) => goJson(snapshotListEntry(s, retentionReasons?.get(s.id))));
  return entries.length === 0 ? "[\n]" : "[\n " + entries.join(",\n ") + "\n]";
}

/** A readable table: one block per source, one line per snapshot. */
export function formatSnapshotListTable(snapshots: readonly SnapshotManifest[], retentionReasons?: ReadonlyMap<string, readonly string[]>): string {
  const lines: string[] = [];
  let currentSource = "";
  for (const snapshot of sortSnapshotsLikeKopia(snapshots)) {
    const identity = sourceIdentity(snapshot.source);
    if (identity !== currentSource) {
      if (lines.length > 0) lines.push("");
      lines.push(identity);
      currentSource = identity;
    }
    const stats = (snapshot.data.stats ?? {}) as { totalSize?: number; fileCount?: number; dirCount?: number };
    const incomplete = snapshot.incompleteReason === undefined ? "" : `  incomplete: ${snapshot.incompleteReason}`;
    const reasons = retentionReasons?.get(snapshot.id)?.join(",") ?? "";
    lines.push(
      `  ${snapshot.startTime.padEnd(31)} ${snapshot.id}  ${String(stats.totalSize ?? "?").padStart(12)} B  ` +
        `files:${stats.fileCount ?? "?"} dirs:${stats.dirCount ?? "?"}${incomplete}${reasons === "" ? "" : `  (${reasons})`}`,
    );
  }
  if (lines.length === 0) lines.push("(no snapshots)");
  return lines.join("\n") + "\n";
}
