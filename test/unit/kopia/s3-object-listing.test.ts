import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isRepositoryError } from "../../../webhook/kopia/repository-error.ts";
import { type ListObjectsPage, listAllObjects, parseListObjectsPage } from "../../../webhook/kopia/s3-object-listing.ts";

// The shape of a ListObjectsV2 answer as AWS documents it (ListBucketResult, Contents/Key/Size,
// IsTruncated, NextContinuationToken).
const page = (keys: string[], truncated: boolean, token?: string) =>
  `<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>repo/x</Prefix>` +
  `<KeyCount>${keys.length}</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>${truncated}</IsTruncated>` +
  keys
    .map(
      (k) =>
        `<Contents><Key>${k}</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>&quot;e&quot;</ETag><Size>12</Size><StorageClass>STANDARD</StorageClass></Contents>`,
    )
    .join("") +
  (token ? `<NextContinuationToken>${token}</NextContinuationToken>` : "") +
  `</ListBucketResult>`;

describe("parseListObjectsPage", () => {
  it("reads keys, sizes, the truncation flag and the token", () => {
    const parsed = parseListObjectsPage(page(["repo/xe0", "repo/a&amp;b"], true, "tok/1+2="), "listing");
    assert.deepEqual(parsed, {
      objects: [
        { key: "repo/xe0", sizeBytes: 12 },
        { key: "repo/a&b", sizeBytes: 12 },
      ],
      isTruncated: true,
      nextContinuationToken: "tok/1+2=",
    });
  });

  it("refuses an answer that is not a listing", () => {
    assert.throws(
      () => parseListObjectsPage("<Error><Code>AccessDenied</Code></Error>", "listing"),
      (e) => isRepositoryError(e, "corrupt"),
    );
  });

  it("refuses a listing that does not say whether it is truncated", () => {
    assert.throws(
      () => parseListObjectsPage("<ListBucketResult></ListBucketResult>", "listing"),
      (e) => isRepositoryError(e, "corrupt"),
    );
  });
});

describe("listAllObjects", () => {
  it("follows continuation tokens until a page is not truncated", async () => {
    const pages: Record<string, ListObjectsPage> = {
      start: { objects: [{ key: "a", sizeBytes: 1 }], isTruncated: true, nextContinuationToken: "t1" },
      t1: { objects: [{ key: "b", sizeBytes: 1 }], isTruncated: true, nextContinuationToken: "t2" },
      t2: { objects: [{ key: "c", sizeBytes: 1 }], isTruncated: false },
    };
    const asked: (string | undefined)[] = [];
    const all = await listAllObjects(async (token) => {
      asked.push(token);
      return pages[token ?? "start"]!;
    }, "listing");
    assert.deepEqual(
      all.map((o) => o.key),
      ["a", "b", "c"],
    );
    assert.deepEqual(asked, [undefined, "t1", "t2"]);
  });

  it("fails on a truncated page without a continuation token instead of stopping there", async () => {
    await assert.rejects(
      listAllObjects(async () => ({ objects: [{ key: "a", sizeBytes: 1 }], isTruncated: true }), "listing of s3://b/repo/"),
      (e) => isRepositoryError(e, "corrupt") && /truncated but gives no continuation token/.test(e.message) && /s3:\/\/b\/repo\//.test(e.message),
    );
  });

  it("fails when the server repeats a continuation token", async () => {
    await assert.rejects(
      listAllObjects(async () => ({ objects: [], isTruncated: true, nextContinuationToken: "same" }), "listing"),
      (e) => isRepositoryError(e, "corrupt") && /repeats/.test(e.message),
    );
  });
});
