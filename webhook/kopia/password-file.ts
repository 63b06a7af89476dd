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
  // Returned as is: the reader decides whether a trailing newline belongs to the password.
  return text;
}
