import { KOPIA_SOURCE_PATH } from "./wire-names.ts";

// The Kopia source identity VolSync's mover uses for a ReplicationSource or ReplicationDestination.
// We pin username and hostname explicitly on both objects and look snapshots up with the same
// function, so the identity the catalog is asked about is the one backups are written under.
// The system we replace looked up the raw `<pvc>-backup` and silently missed sanitised names.

export const MAX_KOPIA_USERNAME = 50;
export const DEFAULT_KOPIA_USERNAME = "volsync-default";

export type KopiaIdentity = {
  username: string;
  hostname: string;
  path: string;
  /** `username@hostname:path`, the catalog's key and what `kopia snapshot list` prints. */
  key: string;
  /** The sanitised name was longer than the username limit and was cut: identities may collide. */
  usernameTruncated: boolean;
};

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

export function kopiaUsername(customResourceName: string): string {
  const kept = keepCharacters(customResourceName, isUsernameCharacter);
  const trimmed = trimCharacters(kept, "-_");
  if (trimmed === "") return DEFAULT_KOPIA_USERNAME;
  // VolSync cuts without trimming again; so do we, or the identities would differ.
  return trimmed.slice(0, MAX_KOPIA_USERNAME);
}

export function kopiaHostname(namespace: string): string {
  const kept = keepCharacters(namespace.replaceAll("_", "-"), (c) => isAsciiAlphanumeric(c) || c === "-" || c === ".");
  const trimmed = trimCharacters(kept, "-.");
  return trimmed === "" ? DEFAULT_KOPIA_USERNAME : trimmed;
}

export function kopiaIdentity(customResourceName: string, namespace: string): KopiaIdentity {
  const username = kopiaUsername(customResourceName);
  const hostname = kopiaHostname(namespace);
  const sanitisedLength = trimCharacters(keepCharacters(customResourceName, isUsernameCharacter), "-_").length;
  return {
    username,
    hostname,
    path: KOPIA_SOURCE_PATH,
    key: `${username}@${hostname}:${KOPIA_SOURCE_PATH}`,
    usernameTruncated: sanitisedLength > MAX_KOPIA_USERNAME,
  };
}
