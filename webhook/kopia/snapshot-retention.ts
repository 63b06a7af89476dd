// Why kopia keeps each snapshot (`retentionReason` in `kopia snapshot list --json`). Kopia does
// not store it: the CLI computes it from the effective retention policy of each source at listing
// time, and so does this module, following kopia's rules (including their quirks) so the two
// listings stay identical. Calendar buckets are in UTC, which is what kopia uses in a container
// without a local time zone; on a machine with another zone kopia's weekly buckets and cutoffs
// follow that zone instead.

import type { ManifestEntry } from "./manifest-entries.ts";
import { RepositoryError } from "./repository-error.ts";
import { type SnapshotManifest, type SnapshotSource, sortSnapshotsLikeKopia } from "./snapshot-manifest.ts";

const retentionFields = ["keepLatest", "keepHourly", "keepDaily", "keepWeekly", "keepMonthly", "keepAnnual"] as const;
type RetentionField = (typeof retentionFields)[number];
export type RetentionPolicy = Partial<Record<RetentionField, number>>;

export type PolicyManifest = { labels: Record<string, string>; retention: RetentionPolicy; noParent: boolean };

/** kopia's built-in defaults, applied after every defined policy. */
const defaultRetention: Required<RetentionPolicy> = {
  keepLatest: 10,
  keepHourly: 48,
  keepDaily: 7,
  keepWeekly: 4,
  keepMonthly: 24,
  keepAnnual: 3,
};

export function toPolicyManifest(entry: ManifestEntry): PolicyManifest {
  const data = (entry.data ?? {}) as { retention?: Record<string, unknown>; noParent?: unknown };
  const retention: RetentionPolicy = {};
  for (const field of retentionFields) {
    const value = data.retention?.[field];
    if (value === undefined || value === null) continue;
    if (!Number.isInteger(value)) throw new RepositoryError("corrupt", `policy manifest ${entry.id}: ${field} is not an integer`);
    retention[field] = value as number;
  }
  return { labels: entry.labels, retention, noParent: data.noParent === true };
}

function parentPath(path: string): string {
  const volume = /^[A-Za-z]:[\\/]/.test(path) ? path.slice(0, 2) : "";
  let rest = path.slice(volume.length);
  const lastSlash = (s: string) => Math.max(s.lastIndexOf("/"), s.lastIndexOf("\\"));
  let last = lastSlash(rest);
  if (last === rest.length - 1 && last !== 0) {
    rest = rest.slice(0, last);
    last = lastSlash(rest);
  }
  if (last < 0) return path;
  if (last === 0) return volume + rest.slice(0, 1);
  return volume + rest.slice(0, last);
}

function matches(policy: PolicyManifest, wanted: Record<string, string>): boolean {
  return Object.entries(wanted).every(([key, value]) => policy.labels[key] === value);
}

/** The retention policy kopia applies to a source: most specific definition first, then defaults. */
export function effectiveRetention(policies: readonly PolicyManifest[], source: SnapshotSource): RetentionPolicy {
  const hierarchy: PolicyManifest[] = [];
  const find = (labels: Record<string, string>) => hierarchy.push(...policies.filter((p) => matches(p, { type: "policy", ...labels })));
  for (let path = source.path; path !== "";) {
    find({ policyType: "path", username: source.userName, hostname: source.host, path });
    const parent = parentPath(path);
    if (parent === path) break;
    path = parent;
  }
  find({ policyType: "user", username: source.userName, hostname: source.host });
  find({ policyType: "host", hostname: source.host });
  find({ policyType: "global" });

  const merged: RetentionPolicy = {};
  const mergeFrom = (retention: RetentionPolicy) => {
    for (const field of retentionFields) if (merged[field] === undefined && retention[field] !== undefined) merged[field] = retention[field];
  };
  for (const policy of hierarchy) {
    mergeFrom(policy.retention);
    if (policy.noParent) return merged;
  }
  mergeFrom(defaultRetention);
  return merged;
}

const nsPerMs = 1_000_000n;
const nsPerHour = 3_600_000_000_000n;

/** Go's time.AddDate on a UTC time, nanoseconds kept. */
function addDate(ns: bigint, years: number, months: number, days: number): bigint {
  const ms = Number(ns / nsPerMs);
  const d = new Date(ms);
  const shifted = Date.UTC(
    d.getUTCFullYear() + years,
    d.getUTCMonth() + months,
    d.getUTCDate() + days,
    d.getUTCHours(),
    d.getUTCMinutes(),
    d.getUTCSeconds(),
    d.getUTCMilliseconds(),
  );
  return BigInt(shifted) * nsPerMs + (ns % nsPerMs);
}

function isoWeek(date: Date): [number, number] {
  // The ISO week is the week of its Thursday, counted from the first week of that Thursday's year.
  const mondayBased = (date.getUTCDay() + 6) % 7;
  const thursdayMs = Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate() - mondayBased + 3);
  const year = new Date(thursdayMs).getUTCFullYear();
  return [year, Math.floor((thursdayMs - Date.UTC(year, 0, 1)) / (7 * 86_400_000)) + 1];
}

const pad = (n: number, width = 2) => String(n).padStart(width, "0");
const tagRank: Record<string, number> = { latest: 1, hourly: 2, daily: 3, weekly: 4, monthly: 5, annual: 6 };

function splitTag(tag: string): [string, string] {
  const dash = tag.lastIndexOf("-");
  return dash < 0 ? [tag, ""] : [tag.slice(0, dash), tag.slice(dash + 1)];
}

function sortTags(tags: string[]): string[] {
  return tags.sort((a, b) => {
    const [p1, s1] = splitTag(a);
    const [p2, s2] = splitTag(b);
    const r1 = tagRank[p1] ?? 0;
    const r2 = tagRank[p2] ?? 0;
    if (r1 !== r2) return r1 - r2;
    if (p1 !== p2) return p1 < p2 ? -1 : 1;
    return s1 < s2 ? -1 : s1 > s2 ? 1 : 0;
  });
}

/** Retention reasons of the snapshots of one source, by manifest ID. */
function reasonsForSource(snapshots: readonly SnapshotManifest[], policy: RetentionPolicy, out: Map<string, string[]>) {
  let maxCompleteNs = 0n;
  let maxNs = 0n;
  let anyComplete = false;
  for (const s of snapshots) {
    if (s.startTimeNs > maxNs) maxNs = s.startTimeNs;
    if (s.incompleteReason === undefined && (!anyComplete || s.startTimeNs > maxCompleteNs)) {
      maxCompleteNs = s.startTimeNs;
      anyComplete = true;
    }
  }
  const farFuture = addDate(maxCompleteNs, 0, 0, 365);
  const cutoff = (value: number | undefined, shift: (n: number) => bigint) => (value === undefined ? farFuture : shift(value));
  const cutoffs = {
    annual: cutoff(policy.keepAnnual, (n) => addDate(maxCompleteNs, -n, 0, 0)),
    monthly: cutoff(policy.keepMonthly, (n) => addDate(maxCompleteNs, 0, -n, 0)),
    weekly: cutoff(policy.keepWeekly, (n) => addDate(maxCompleteNs, 0, 0, -7 * n)),
    daily: cutoff(policy.keepDaily, (n) => addDate(maxCompleteNs, 0, 0, -n)),
    hourly: cutoff(policy.keepHourly, (n) => maxCompleteNs - BigInt(n) * nsPerHour),
  };
  const allZero = retentionFields.every((field) => (policy[field] ?? 0) === 0);
  const keepLatest = allZero ? Number.MAX_SAFE_INTEGER : policy.keepLatest;

  // kopia shares one set of claimed period IDs across all bucket kinds; kept as is.
  const claimed = new Set<string>();
  const counters = new Map<string, number>();
  const newestFirst = sortSnapshotsLikeKopia(snapshots).reverse();
  newestFirst.forEach((s, i) => {
    if (s.incompleteReason !== undefined) {
      out.set(s.id, []);
      return;
    }
    const date = new Date(Number(s.startTimeNs / nsPerMs));
    const [isoYear, week] = isoWeek(date);
    const year = date.getUTCFullYear();
    const month = `${pad(year, 4)}-${pad(date.getUTCMonth() + 1)}`;
    const day = `${month}-${pad(date.getUTCDate())}`;
    const cases: [bigint, string, string, number | undefined][] = [
      [-1n << 80n, String(i), "latest", keepLatest],
      [cutoffs.annual, pad(year, 4), "annual", policy.keepAnnual],
      [cutoffs.monthly, month, "monthly", policy.keepMonthly],
      [cutoffs.weekly, `${pad(isoYear, 4)}-${pad(week)}`, "weekly", policy.keepWeekly],
      [cutoffs.daily, day, "daily", policy.keepDaily],
      [cutoffs.hourly, `${day} ${pad(date.getUTCHours())}`, "hourly", policy.keepHourly],
    ];
    const reasons: string[] = [];
    for (const [cutoffNs, periodId, kind, max] of cases) {
      if (max === undefined || s.startTimeNs < cutoffNs || claimed.has(periodId)) continue;
      const count = counters.get(kind) ?? 0;
      if (count < max) {
        claimed.add(periodId);
        counters.set(kind, count + 1);
        reasons.push(`${kind}-${count + 1}`);
      }
    }
    out.set(s.id, sortTags(reasons));
  });

  // Incomplete snapshots newer than every complete one are kept a while, as kopia does.
  for (const [i, s] of newestFirst.entries()) {
    if (s.incompleteReason === undefined) break;
    const ageNs = maxNs - s.startTimeNs;
    if (ageNs < 4n * nsPerHour || i < 3) out.get(s.id)!.push("incomplete");
    else break;
  }
}

/** Retention reasons for every snapshot, each source under its own effective policy. */
export function computeRetentionReasons(snapshots: readonly SnapshotManifest[], policies: readonly PolicyManifest[]): Map<string, string[]> {
  const bySource = new Map<string, SnapshotManifest[]>();
  for (const s of snapshots) {
    const key = JSON.stringify([s.source.userName, s.source.host, s.source.path]);
    const group = bySource.get(key);
    if (group === undefined) bySource.set(key, [s]);
    else group.push(s);
  }
  const out = new Map<string, string[]>();
  for (const group of bySource.values()) reasonsForSource(group, effectiveRetention(policies, group[0]!.source), out);
  return out;
}
