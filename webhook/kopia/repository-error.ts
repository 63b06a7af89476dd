// Every failure to read a Kopia repository is one of these kinds, so that the catalog and the CLI
// can say what a person should fix. None of them is ever turned into "no snapshots".

export type RepositoryErrorKind =
  /** The folder or a blob inside it does not exist. */
  | "not-found"
  /** The operating system refused access (permissions, ownership). */
  | "permission-denied"
  /** The password does not open the format blob. */
  | "wrong-password"
  /** The repository uses a format, algorithm or feature this reader does not know. */
  | "unsupported"
  /** A repository upgrade holds the lock: kopia itself refuses to read while it is held. */
  | "busy"
  /** Bytes that fail authentication, are truncated, or do not parse. */
  | "corrupt"
  /** Any other I/O error. */
  | "io";

export class RepositoryError extends Error {
  readonly kind: RepositoryErrorKind;

  constructor(kind: RepositoryErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "RepositoryError";
    this.kind = kind;
  }
}

export function isRepositoryError(error: unknown, kind?: RepositoryErrorKind): error is RepositoryError {
  return error instanceof RepositoryError && (kind === undefined || error.kind === kind);
}

/** Maps a Node file-system error to a repository error that names the path. */
export function fromFileSystemError(error: unknown, what: string): RepositoryError {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === "ENOENT" || code === "ENOTDIR") return new RepositoryError("not-found", `${what} does not exist`, { cause: error });
  if (code === "EACCES" || code === "EPERM") return new RepositoryError("permission-denied", `${what}: permission denied`, { cause: error });
  const message = error instanceof Error ? error.message : String(error);
  return new RepositoryError("io", `${what}: ${message}`, { cause: error });
}
