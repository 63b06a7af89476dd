// Manifests: the small JSON records (snapshots, policies, maintenance state) kopia keeps in
// contents whose ID starts with `m`. Each content is gzipped `{"entries":[…]}`; the same manifest
// ID can appear in several contents, and the one modified last wins.

import { gunzipSync } from "node:zlib";
import { parseRfc3339Ns } from "../domain/rfc3339-time.ts";
import { RepositoryError } from "./repository-error.ts";

export type ManifestEntry = {
  id: string;
  labels: Record<string, string>;
  /** Nanoseconds since the epoch: kopia orders manifest versions with nanosecond precision. */
  modifiedNs: bigint;
  deleted: boolean;
  data: unknown;
};

/** Parses an RFC 3339 time to nanoseconds since the epoch, keeping every digit kopia wrote. */
export function parseTimestampNs(text: unknown, what: string): bigint {
  const ns = typeof text === "string" ? parseRfc3339Ns(text) : undefined;
  if (ns === undefined) throw new RepositoryError("corrupt", `${what}: ${JSON.stringify(text)} is not an RFC 3339 time`);
  return ns;
}

export function parseManifestContent(payload: Buffer, what: string): ManifestEntry[] {
  let json: unknown;
  try {
    json = JSON.parse(gunzipSync(payload).toString("utf8"));
  } catch (error) {
    throw new RepositoryError("corrupt", `${what} is not a gzipped JSON manifest`, { cause: error });
  }
  if (typeof json !== "object" || json === null) throw new RepositoryError("corrupt", `${what} is not a JSON object`);
  // kopia matches the top-level key case-insensitively and refuses it twice.
  const keys = Object.keys(json).filter((key) => key.toLowerCase() === "entries");
  if (keys.length !== 1) throw new RepositoryError("corrupt", `${what} has ${keys.length} "entries" lists`);
  const entries = (json as Record<string, unknown>)[keys[0]!];
  if (!Array.isArray(entries)) throw new RepositoryError("corrupt", `${what}: entries is not a list`);
  return entries.map((raw: Record<string, unknown> | null) => {
    if (typeof raw !== "object" || raw === null || typeof raw.id !== "string") {
      throw new RepositoryError("corrupt", `${what} has a manifest entry without an id`);
    }
    const labels = raw.labels ?? {};
    if (typeof labels !== "object" || labels === null || Object.values(labels).some((v) => typeof v !== "string")) {
      throw new RepositoryError("corrupt", `${what}: manifest ${raw.id} has malformed labels`);
    }
    return {
      id: raw.id,
      labels: labels as Record<string, string>,
      modifiedNs: parseTimestampNs(raw.modified, `${what}: manifest ${raw.id}`),
      deleted: raw.deleted === true,
      data: raw.data,
    };
  });
}

/** Latest-wins merge by manifest ID (ties keep the first seen), then deleted manifests dropped. */
export function mergeManifestEntries(contents: Iterable<readonly ManifestEntry[]>): Map<string, ManifestEntry> {
  const winners = new Map<string, ManifestEntry>();
  for (const entries of contents) {
    for (const entry of entries) {
      const current = winners.get(entry.id);
      if (current === undefined || entry.modifiedNs > current.modifiedNs) winners.set(entry.id, entry);
    }
  }
  for (const [id, entry] of winners) if (entry.deleted) winners.delete(id);
  return winners;
}
