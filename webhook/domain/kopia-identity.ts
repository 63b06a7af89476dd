import { createHash } from "node:crypto";
import { KOPIA_SOURCE_PATH } from "./wire-names.ts";

// The Kopia source identity (`username@hostname:/data`) backups of a PVC are written under, and
// the one VolSync would give it by itself. Both matter:
//
// - VolSync's automatic naming (no explicit fields) keeps the CR name to [A-Za-z0-9_-], trims
//   `-`/`_`, and cuts it to 50 characters with no second trim. Repositories written by the seed
//   stack and by VolSync's defaults hold their snapshots under that name, so where it is valid
//   and no other PVC can arrive at it, pvc-guardian keeps it.
// - Explicit `spec.kopia.username`/`hostname` are used as written, but the CRD refuses values
//   that end in `-` or `_` (422), and the 50-character cut makes long names that start alike
//   (StatefulSet ordinals) share one identity, so one PVC could restore another's data. Those
//   PVCs get a name of their own: a readable prefix, a `.`, and a hash of the whole CR name.
//   Automatic usernames never contain `.`, so such a name can never be one VolSync (or the seed
//   stack) wrote on its own, and no legacy snapshot can be found under it by accident.
//
// The catalog is asked about the written identity; where that differs from the automatic one, the
// restore decision also looks at the automatic one, since it may hold this PVC's (or another
// PVC's) older snapshots, and refuses to guess (restore-decision.ts).

export const MAX_KOPIA_USERNAME = 50;
export const DEFAULT_KOPIA_USERNAME = "volsync-default";

/** The pattern both `spec.kopia.username` and `spec.kopia.hostname` must match (VolSync's CRDs). */
const CRD_IDENTITY_FIELD = /^[a-zA-Z0-9][a-zA-Z0-9._-]*[a-zA-Z0-9]$|^[a-zA-Z0-9]$/;
/** The readable part of a hashed name; with the separator and the hash it stays within 50. */
const HASHED_PREFIX_LENGTH = 37;
const HASH_HEX = 12;

export type KopiaIdentity = {
  username: string;
  hostname: string;
  path: string;
  /** `username@hostname:path`, the catalog's key and what `kopia snapshot list` prints. */
  key: string;
};

/** How a PVC's backups are identified, and why the written identity may differ from VolSync's own. */
export type BackupIdentity = {
  /** Written explicitly on the RS and RD: CRD-valid and unique per PVC. */
  written: KopiaIdentity;
  /** What VolSync derives without explicit fields, and what earlier backups may have used. */
  automatic: KopiaIdentity;
  /** Set when `written` is not `automatic`: why the automatic name cannot be kept. */
  automaticProblem?: string;
};

export const isCrdValidIdentityField = (value: string): boolean => CRD_IDENTITY_FIELD.test(value);

function keepCharacters(text: string, isAllowed: (char: string) => boolean): string {
  let kept = "";
  for (const char of text) if (isAllowed(char)) kept += char;
  return kept;
}

function trimCharacters(text: string, trimmed: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && trimmed.includes(text[start]!)) start++;
  while (end > start && trimmed.includes(text[end - 1]!)) end--;
  return text.slice(start, end);
}

const isAsciiAlphanumeric = (char: string): boolean => /^[A-Za-z0-9]$/.test(char);
const isUsernameCharacter = (char: string): boolean => isAsciiAlphanumeric(char) || char === "-" || char === "_";
const isHostnameCharacter = (char: string): boolean => isAsciiAlphanumeric(char) || char === "-" || char === ".";

const sanitisedUsername = (customResourceName: string): string => trimCharacters(keepCharacters(customResourceName, isUsernameCharacter), "-_");

/** VolSync's automatic username for a CR name. */
export function kopiaUsername(customResourceName: string): string {
  const trimmed = sanitisedUsername(customResourceName);
  if (trimmed === "") return DEFAULT_KOPIA_USERNAME;
  // VolSync cuts without trimming again; so do we, or the identities would differ.
  return trimmed.slice(0, MAX_KOPIA_USERNAME);
}

/** VolSync's automatic hostname for a namespace. */
export function kopiaHostname(namespace: string): string {
  const trimmed = trimCharacters(keepCharacters(namespace.replaceAll("_", "-"), isHostnameCharacter), "-.");
  return trimmed === "" ? DEFAULT_KOPIA_USERNAME : trimmed;
}

function identityOf(username: string, hostname: string): KopiaIdentity {
  return { username, hostname, path: KOPIA_SOURCE_PATH, key: `${username}@${hostname}:${KOPIA_SOURCE_PATH}` };
}

/** The identity VolSync's mover uses for a CR without explicit username and hostname. */
export function volsyncAutomaticIdentity(customResourceName: string, namespace: string): KopiaIdentity {
  return identityOf(kopiaUsername(customResourceName), kopiaHostname(namespace));
}

const shortHash = (text: string): string => createHash("sha256").update(text).digest("hex").slice(0, HASH_HEX);

function hashedName(readable: string, separator: "." | "_", whole: string): string {
  const prefix = trimCharacters(readable.slice(0, HASHED_PREFIX_LENGTH), "-_.") || "volsync";
  return `${prefix}${separator}${shortHash(whole)}`;
}

/**
 * Why VolSync's automatic username for this CR name cannot be written as this PVC's own, or
 * undefined when it can: it must be the name unchanged (nothing dropped, so no other name maps to
 * it) and shorter than the cut (so no longer name cut to 50 characters equals it).
 */
function automaticUsernameProblem(customResourceName: string, automatic: string): string | undefined {
  if (!isCrdValidIdentityField(automatic)) return `VolSync's automatic name "${automatic}" ends in "-" or "_", which its CRD refuses as an explicit username`;
  if (sanitisedUsername(customResourceName).length >= MAX_KOPIA_USERNAME) {
    return `VolSync's automatic name "${automatic}" reaches its ${MAX_KOPIA_USERNAME}-character cut, so other PVCs whose names start the same way share it`;
  }
  if (automatic !== customResourceName)
    return `VolSync's automatic name "${automatic}" drops characters of "${customResourceName}", so other names map to it too`;
  return undefined;
}

/** The written username: VolSync's own where it is valid and cannot be shared, else prefix `.` hash. */
export function backupIdentity(customResourceName: string, namespace: string): BackupIdentity {
  const automatic = volsyncAutomaticIdentity(customResourceName, namespace);
  const usernameProblem = automaticUsernameProblem(customResourceName, automatic.username);
  const username = usernameProblem === undefined ? automatic.username : hashedName(sanitisedUsername(customResourceName), ".", customResourceName);
  // Namespaces are DNS labels, which VolSync keeps as they are; anything else (only seen in
  // test vectors) gets a hashed hostname, marked by `_`, which automatic hostnames never hold.
  const hostnameKept = automatic.hostname === namespace && isCrdValidIdentityField(namespace);
  const hostname = hostnameKept ? automatic.hostname : hashedName(automatic.hostname, "_", namespace);
  const written = identityOf(username, hostname);
  if (written.key === automatic.key) return { written, automatic };
  const automaticProblem = usernameProblem ?? `VolSync's automatic hostname "${automatic.hostname}" is not the namespace "${namespace}"`;
  return { written, automatic, automaticProblem };
}

/** Parses `username@hostname` or `username@hostname:/path`; undefined when it is neither. */
export function parseIdentityKey(text: string): KopiaIdentity | undefined {
  const match = /^([^@:\s]+)@([^@:\s]+)(?::(\/\S*))?$/.exec(text);
  if (!match) return undefined;
  const path = match[3] ?? KOPIA_SOURCE_PATH;
  return { username: match[1]!, hostname: match[2]!, path, key: `${match[1]}@${match[2]}:${path}` };
}
