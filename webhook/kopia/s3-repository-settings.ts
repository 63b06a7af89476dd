// Where an S3 repository is and how to reach it, from the keys VolSync's Kopia mover reads from the
// repository Secret (KOPIA_REPOSITORY=s3://bucket/prefix, AWS_S3_ENDPOINT, AWS_S3_DISABLE_TLS,
// AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), interpreted the way the mover hands them
// to `kopia repository connect s3`, so one Secret serves both.

import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { BlobStore } from "./blob-store.ts";
import { RepositoryError, fromFileSystemError } from "./repository-error.ts";
import { type S3Addressing, type S3BlobStoreDeps, createS3BlobStore } from "./s3-blob-store.ts";
import type { S3Credentials } from "./s3-request-signer.ts";

/** Where the bucket is, as the store needs it, plus the CA file for a private endpoint. */
export type S3RepositorySettings = Pick<S3BlobStoreDeps, "bucket" | "prefix" | "endpoint" | "useTls" | "region" | "addressing"> & {
  /** PEM file of the CAs that sign a private endpoint's certificate; read at use time. */
  caBundleFile?: string;
};

export type S3AddressingChoice = S3Addressing | "auto";

/** What AWS's own endpoints are called: kopia's S3 client uses virtual-hosted style for them. */
const awsEndpoint = /(^|\.)amazonaws\.com(\.cn)?$/;
export const defaultS3Endpoint = "s3.amazonaws.com";
export const defaultS3Region = "us-east-1";

/** Whether `--repository` / `KOPIA_REPOSITORY` names an S3 repository. */
export function isS3RepositoryUrl(text: string): boolean {
  return text.startsWith("s3://");
}

/**
 * `s3://bucket/prefix` as VolSync's mover reads it: the bucket is the first segment; the prefix is
 * the rest with repeated slashes collapsed and a trailing slash added, so `s3://b/app` is kopia's
 * `--prefix=app/` (and `s3://b` or `s3://b/` is the bucket's root).
 */
export function parseS3RepositoryUrl(text: string): { bucket: string; prefix: string } | undefined {
  const match = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(text.trim());
  if (match === null) return undefined;
  let prefix = (match[2] ?? "").replace(/\/{2,}/g, "/");
  if (prefix !== "" && !prefix.endsWith("/")) prefix += "/";
  if (prefix === "/") prefix = "";
  return { bucket: match[1]!, prefix };
}

/** `AWS_S3_ENDPOINT` as the mover passes it to kopia: any `http://` or `https://` removed. */
export function normalizeS3Endpoint(text: string): string {
  return text
    .trim()
    .replace(/^https?:\/\//, "")
    .replace(/\/+$/, "");
}

export function resolveS3Addressing(choice: S3AddressingChoice, endpoint: string): S3Addressing {
  if (choice !== "auto") return choice;
  return awsEndpoint.test(endpoint.replace(/:\d+$/, "")) ? "virtual-hosted" : "path";
}

export type S3SettingsInput = {
  repositoryUrl: string;
  /** The VolSync keys; missing ones take the mover's defaults. */
  keys: Readonly<Record<string, string | undefined>>;
  addressing: S3AddressingChoice;
  caBundleFile?: string;
};

/** The settings, or every problem with them as sentences. */
export function resolveS3Settings(input: S3SettingsInput): { ok: true; settings: S3RepositorySettings } | { ok: false; problems: string[] } {
  const problems: string[] = [];
  const location = parseS3RepositoryUrl(input.repositoryUrl);
  if (location === undefined) problems.push(`"${input.repositoryUrl}" is not an S3 repository URL such as s3://bucket/prefix`);
  const endpoint = normalizeS3Endpoint(input.keys["AWS_S3_ENDPOINT"] ?? "") || defaultS3Endpoint;
  if (!/^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:]+\](:\d{1,5})?$/.test(endpoint)) problems.push(`AWS_S3_ENDPOINT "${endpoint}" is not host[:port]`);
  const disableTls = (input.keys["AWS_S3_DISABLE_TLS"] ?? "").trim().toLowerCase();
  if (disableTls !== "" && disableTls !== "true" && disableTls !== "false") problems.push(`AWS_S3_DISABLE_TLS is "${disableTls}"; use true or false`);
  const region = (input.keys["AWS_REGION"] ?? input.keys["AWS_DEFAULT_REGION"] ?? "").trim() || defaultS3Region;
  if (problems.length > 0 || location === undefined) return { ok: false, problems };
  return {
    ok: true,
    settings: {
      ...location,
      endpoint,
      // As the mover: TLS unless AWS_S3_DISABLE_TLS is exactly "true".
      useTls: disableTls !== "true",
      region,
      addressing: resolveS3Addressing(input.addressing, endpoint),
      ...(input.caBundleFile ? { caBundleFile: input.caBundleFile } : {}),
    },
  };
}

/** Access keys from a set of VolSync keys; a missing key is a `permission-denied` error naming it. */
export function s3CredentialsOf(keys: Readonly<Record<string, string | undefined>>, where: string): S3Credentials {
  const accessKeyId = keys["AWS_ACCESS_KEY_ID"]?.trim();
  const secretAccessKey = keys["AWS_SECRET_ACCESS_KEY"]?.trim();
  const missing = [accessKeyId ? undefined : "AWS_ACCESS_KEY_ID", secretAccessKey ? undefined : "AWS_SECRET_ACCESS_KEY"].filter(Boolean);
  if (missing.length > 0) throw new RepositoryError("permission-denied", `${missing.join(" and ")} ${missing.length > 1 ? "are" : "is"} missing from ${where}`);
  const sessionToken = keys["AWS_SESSION_TOKEN"]?.trim();
  return { accessKeyId: accessKeyId!, secretAccessKey: secretAccessKey!, ...(sessionToken ? { sessionToken } : {}) };
}

/** Reads the access keys from a mounted Secret (one file per key) at every call, so rotation needs no restart. */
export function credentialsFromSecretDirectory(directory: string): () => Promise<S3Credentials> {
  return async () => {
    const keys: Record<string, string | undefined> = {};
    for (const name of ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"]) {
      try {
        keys[name] = await readFile(join(directory, name), "utf8");
      } catch (error) {
        const failure = fromFileSystemError(error, `${join(directory, name)}`);
        if (failure.kind !== "not-found") throw failure;
      }
    }
    return s3CredentialsOf(keys, `the credentials directory ${directory}`);
  };
}

export function createS3RepositoryStore(
  settings: S3RepositorySettings,
  readCredentials: () => Promise<S3Credentials>,
  options: { requestTimeoutMs: number; signal?: AbortSignal; lookup?: import("node:net").LookupFunction },
): BlobStore {
  const { caBundleFile } = settings;
  return createS3BlobStore({
    bucket: settings.bucket,
    prefix: settings.prefix,
    endpoint: settings.endpoint,
    useTls: settings.useTls,
    region: settings.region,
    addressing: settings.addressing,
    readCredentials,
    ...(caBundleFile
      ? {
          caBundle: async () => {
            try {
              return await readFile(caBundleFile, "utf8");
            } catch (error) {
              throw fromFileSystemError(error, `S3 CA bundle ${caBundleFile}`);
            }
          },
        }
      : {}),
    ...options,
  });
}
