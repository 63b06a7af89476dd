// What VolSync's Kopia mover would do with an object we generate, written from VolSync's own
// behaviour (its controller's Job environment and the mover's `kopia snapshot list` / restore-as-of
// selection, as measured by running them; the README's "Kopia identities" and "The restore point
// is pinned" say what that is) and nothing else: not from pvc-guardian's own code, so a test that
// compares the two can disagree.
//
// - moverJobEnvironment: the environment the controller gives the mover Job for a
//   ReplicationSource or ReplicationDestination (identity, DATA_DIR, restore selectors, retention).
// - chooseMoverSnapshot: the snapshot the mover's restore takes, from the real
//   `kopia snapshot list <username>@<hostname>:/data --json` of a repository.

import type { KopiaRepository } from "./kopia.ts";

/** The fields of a VolSync object that the mover Job is built from. */
export type VolSyncObject = {
  kind: string;
  metadata: { name: string; namespace: string };
  spec?: {
    kopia?: {
      username?: unknown;
      hostname?: unknown;
      restoreAsOf?: unknown;
      previous?: unknown;
      shallow?: unknown;
      sourcePathOverride?: unknown;
      sourceIdentity?: unknown;
      retain?: { hourly?: unknown; daily?: unknown; weekly?: unknown; monthly?: unknown };
    };
  };
};

/** The name the fork falls back to when cleaning leaves nothing of a name or a namespace. */
const emptyIdentityFallback = "volsync-default";
const automaticUsernameMaxLength = 50;

/** Contract §1, automatic username: kept to [A-Za-z0-9_-], trimmed of -/_, cut to 50 with no second trim. */
export function automaticUsername(objectName: string): string {
  const kept = objectName
    .replace(/[^A-Za-z0-9_-]/g, "")
    .replace(/^[-_]+/, "")
    .replace(/[-_]+$/, "");
  if (kept === "") return emptyIdentityFallback;
  return kept.slice(0, automaticUsernameMaxLength);
}

/** Contract §1, automatic hostname: `_` → `-`, kept to [A-Za-z0-9.-], trimmed of `-` and `.`. */
export function automaticHostname(namespace: string): string {
  const kept = namespace
    .replace(/_/g, "-")
    .replace(/[^A-Za-z0-9.-]/g, "")
    .replace(/^[-.]+/, "")
    .replace(/[-.]+$/, "");
  return kept === "" ? emptyIdentityFallback : kept;
}

/** The pattern both CRD versions put on explicit `username` and `hostname`. */
export const crdIdentityPattern = /^[a-zA-Z0-9][a-zA-Z0-9._-]*[a-zA-Z0-9]$|^[a-zA-Z0-9]$/;

export type MoverIdentity = { username: string; hostname: string; explicit: boolean };

/** Contract §1: explicit username/hostname as written (both or neither on an RD), else automatic. */
export function moverIdentity(object: VolSyncObject): MoverIdentity {
  const kopia = object.spec?.kopia ?? {};
  const { username, hostname } = kopia;
  if (typeof username === "string" && typeof hostname === "string") return { username, hostname, explicit: true };
  if (object.kind === "ReplicationDestination" && (username !== undefined || hostname !== undefined)) {
    throw new Error(`ReplicationDestination ${object.metadata.name}: username and hostname go together; the controller refuses one without the other`);
  }
  if (kopia.sourceIdentity !== undefined) {
    // It ranks second and is resolved from the ReplicationSource it names: out of this oracle's reach.
    throw new Error(`ReplicationDestination ${object.metadata.name}: sourceIdentity is not modelled by the mover oracle`);
  }
  return {
    username: typeof username === "string" ? username : automaticUsername(object.metadata.name),
    hostname: typeof hostname === "string" ? hostname : automaticHostname(object.metadata.namespace),
    explicit: false,
  };
}

/** Contract §2: the mover Job's environment (only the variables the contract describes). */
export function moverJobEnvironment(object: VolSyncObject): Record<string, string> {
  const isDestination = object.kind === "ReplicationDestination";
  if (!isDestination && object.kind !== "ReplicationSource") throw new Error(`not a VolSync object: ${object.kind}`);
  const kopia = object.spec?.kopia ?? {};
  const identity = moverIdentity(object);
  const env: Record<string, string> = {
    DATA_DIR: isDestination ? "/restore/data" : "/data",
    KOPIA_OVERRIDE_USERNAME: identity.username,
    KOPIA_OVERRIDE_HOSTNAME: identity.hostname,
  };
  if (isDestination) {
    env.KOPIA_DISCOVER_SNAPSHOTS = "true";
    if (kopia.restoreAsOf !== undefined) env.KOPIA_RESTORE_AS_OF = String(kopia.restoreAsOf);
    if (kopia.previous !== undefined) env.KOPIA_PREVIOUS = String(kopia.previous);
    if (kopia.shallow !== undefined) env.KOPIA_SHALLOW = String(kopia.shallow);
  } else {
    const retain = kopia.retain ?? {};
    for (const [field, variable] of [
      ["hourly", "KOPIA_RETAIN_HOURLY"],
      ["daily", "KOPIA_RETAIN_DAILY"],
      ["weekly", "KOPIA_RETAIN_WEEKLY"],
      ["monthly", "KOPIA_RETAIN_MONTHLY"],
    ] as const) {
      if (retain[field] !== undefined) env[variable] = String(retain[field]);
    }
  }
  if (kopia.sourcePathOverride !== undefined) env.KOPIA_SOURCE_PATH_OVERRIDE = String(kopia.sourcePathOverride);
  return env;
}

/** The source the mover's restore lists: `username@hostname:/data` (or the path override). */
export function moverRestoreSource(env: Record<string, string>): string {
  const path = env.KOPIA_SOURCE_PATH_OVERRIDE ?? "/data";
  return `${env.KOPIA_OVERRIDE_USERNAME}@${env.KOPIA_OVERRIDE_HOSTNAME}:${path}`;
}

export type ListedSnapshot = { id: string; startTime: string; incomplete?: string };

export type MoverChoice =
  | { outcome: "restore"; snapshot: ListedSnapshot }
  /** "No eligible snapshots found … No data will be restored": exit 0, an empty volume. */
  | { outcome: "no-eligible-snapshots" };

/**
 * Contract §4 on kopia's listing (its JSON, in its order): keep entries whose startTime text is
 * `<=` KOPIA_RESTORE_AS_OF's text when that is set, newest first, skip KOPIA_PREVIOUS, take the
 * next one whether complete or not.
 */
export function chooseFromListing(listingJson: string, env: Record<string, string>): MoverChoice {
  let listed: unknown;
  try {
    listed = JSON.parse(listingJson);
  } catch {
    return { outcome: "no-eligible-snapshots" };
  }
  if (!Array.isArray(listed)) return { outcome: "no-eligible-snapshots" };
  const snapshots = listed as ListedSnapshot[];
  const asOf = env.KOPIA_RESTORE_AS_OF;
  // jq's `<=` on strings: code point order, which for these ASCII texts is JavaScript's `<=`.
  const eligible = asOf === undefined ? snapshots : snapshots.filter((snapshot) => snapshot.startTime <= asOf);
  const newestFirst = [...eligible].reverse();
  const previous = env.KOPIA_PREVIOUS === undefined ? 0 : Number.parseInt(env.KOPIA_PREVIOUS, 10);
  const chosen = newestFirst[Number.isNaN(previous) ? 0 : previous];
  return chosen === undefined ? { outcome: "no-eligible-snapshots" } : { outcome: "restore", snapshot: chosen };
}

/** The verbatim stdout of `kopia snapshot list <source> --json`; a failure reads as no snapshots. */
export async function listSourceAsMover(repository: KopiaRepository, source: string): Promise<string> {
  try {
    return (await repository.run(["snapshot", "list", source, "--json"])).stdout;
  } catch {
    return "[]";
  }
}

/** The snapshot the mover restores for this ReplicationDestination from this repository. */
export async function chooseMoverSnapshot(repository: KopiaRepository, destination: VolSyncObject): Promise<MoverChoice> {
  if (destination.kind !== "ReplicationDestination") throw new Error(`the mover restores only for a ReplicationDestination, not ${destination.kind}`);
  const env = moverJobEnvironment(destination);
  return chooseFromListing(await listSourceAsMover(repository, moverRestoreSource(env)), env);
}

/** The id the mover would restore, or null for an empty volume: what test assertions compare. */
export function chosenSnapshotId(choice: MoverChoice): string | null {
  return choice.outcome === "restore" ? choice.snapshot.id : null;
}
