// The repository password arrives as a mounted secret file and is read at use time, so a rotated
// secret takes effect on the next refresh without a restart.

import { readFile } from "node:fs/promises";
import { RepositoryError, fromFileSystemError } from "./repository-error.ts";

export async function readPasswordFile(path: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    const failure = fromFileSystemError(error, `password file ${path}`);
    throw new RepositoryError(failure.kind, failure.message, { cause: error });
  }
  // Returned as is: the reader turns it into the password kopia uses (kopiaPasswordOf).
  return text;
}

// What Go's unicode.IsSpace calls space: the Latin-1 set (tab, LF, VT, FF, CR, space, NEL U+0085,
// NBSP U+00A0) and Unicode's White_Space above it. Not JS's \s: that adds U+FEFF and lacks U+0085.
const GO_SPACE = "\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const SURROUNDING_GO_SPACE = new RegExp(`^[${GO_SPACE}]+|[${GO_SPACE}]+$`, "g");

/**
 * The password kopia derives its keys from, given the text it was handed. kopia reads
 * KOPIA_PASSWORD (which VolSync's mover sets from the Secret) through Go's strings.TrimSpace
 * (cli/password.go), so a Secret with a trailing newline or padding still opens the repository in
 * the mover; reading the same Secret any other way would call a working password wrong.
 */
export function kopiaPasswordOf(text: string): string {
  return text.replace(SURROUNDING_GO_SPACE, "");
}
