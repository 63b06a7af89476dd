// The storage a Kopia repository lives on, reduced to the three read operations the reader needs.
// Blob IDs are backend-independent (`kopia.repository`, `xn0_…`, `q…`); each backend maps them to
// its own names. Implementations never write.

export type BlobMetadata = {
  id: string;
  /** Present when the backend reports it for free while listing (object stores do). */
  lengthBytes?: number;
};

export interface BlobStore {
  /** Every blob whose ID starts with `prefix`. Throws a RepositoryError when listing fails. */
  list(prefix: string): Promise<BlobMetadata[]>;
  /** The whole blob; a RepositoryError of kind `not-found` when it does not exist. */
  read(id: string): Promise<Buffer>;
  /** Exactly `length` bytes from `offset`; a shorter blob is `corrupt`. */
  readRange(id: string, offset: number, length: number): Promise<Buffer>;
  /** Where the store points, for messages. */
  readonly location: string;
}
