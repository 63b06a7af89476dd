// The blob store behind a CLI `--repository`: a folder for a filesystem repository, or
// `s3://bucket/prefix` with the S3 settings and keys taken from the same environment variables
// VolSync's Kopia mover reads (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_S3_ENDPOINT,
// AWS_S3_DISABLE_TLS, AWS_REGION).

import { DEFAULT_S3_ADDRESSING, DEFAULT_S3_REQUEST_TIMEOUT_MS } from "../config.ts";
import type { BlobStore } from "../kopia/blob-store.ts";
import { createFilesystemBlobStore } from "../kopia/filesystem-blob-store.ts";
import { type S3AddressingChoice, createS3RepositoryStore, isS3RepositoryUrl, resolveS3Settings, s3CredentialsOf } from "../kopia/s3-repository-settings.ts";

export const repositoryStoreUsage = `--repository takes a folder or s3://bucket/prefix; for S3 the settings come from
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_S3_ENDPOINT (default s3.amazonaws.com),
AWS_S3_DISABLE_TLS (true turns TLS off) and AWS_REGION (default us-east-1), as in the VolSync
repository Secret; --s3-addressing path|virtual-hosted (default: virtual-hosted for AWS, path
otherwise) and --s3-ca-file <pem> for a private endpoint's CA.
`;

export function openRepositoryStore(
  repository: string,
  env: Readonly<Record<string, string | undefined>>,
  options: { addressing?: string; caFile?: string },
): { ok: true; store: BlobStore } | { ok: false; problem: string } {
  if (!isS3RepositoryUrl(repository)) {
    if (options.addressing !== undefined || options.caFile !== undefined)
      return { ok: false, problem: "--s3-addressing and --s3-ca-file apply to s3:// repositories only" };
    return { ok: true, store: createFilesystemBlobStore({ rootPath: repository }) };
  }
  const addressing = options.addressing ?? DEFAULT_S3_ADDRESSING;
  if (addressing !== "auto" && addressing !== "path" && addressing !== "virtual-hosted") {
    return { ok: false, problem: `--s3-addressing must be path or virtual-hosted, not ${addressing}` };
  }
  const resolved = resolveS3Settings({
    repositoryUrl: repository,
    keys: env,
    addressing: addressing as S3AddressingChoice,
    ...(options.caFile ? { caBundleFile: options.caFile } : {}),
  });
  if (!resolved.ok) return { ok: false, problem: resolved.problems.join("; ") };
  return {
    ok: true,
    store: createS3RepositoryStore(resolved.settings, async () => s3CredentialsOf(env, "the environment"), { requestTimeoutMs: DEFAULT_S3_REQUEST_TIMEOUT_MS }),
  };
}
