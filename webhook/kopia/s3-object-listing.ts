// ListObjectsV2 in pages: the XML of one page reduced to keys, sizes and the continuation token,
// and the loop that follows the tokens. A listing that says it is truncated but gives no token to
// continue from is an error, never the end: treating it as the end would hide index blobs.

import { RepositoryError } from "./repository-error.ts";

export type ListedObject = { key: string; sizeBytes: number };

export type ListObjectsPage = { objects: ListedObject[]; isTruncated: boolean; nextContinuationToken?: string };

const xmlEntities: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

function decodeXmlText(text: string): string {
  return text.replace(/&(#x[0-9a-fA-F]+|#\d+|[a-z]+);/g, (whole, name: string) => {
    if (name.startsWith("#x")) return String.fromCodePoint(parseInt(name.slice(2), 16));
    if (name.startsWith("#")) return String.fromCodePoint(Number(name.slice(1)));
    return xmlEntities[name] ?? whole;
  });
}

function elementText(xml: string, name: string): string | undefined {
  const match = new RegExp(`<${name}>([^<]*)</${name}>`).exec(xml);
  return match === null ? undefined : decodeXmlText(match[1]!);
}

/** One ListBucketResult page. `what` names the listing in errors. */
export function parseListObjectsPage(xml: string, what: string): ListObjectsPage {
  if (!/<ListBucketResult[\s>]/.test(xml)) throw new RepositoryError("corrupt", `${what}: the S3 listing response is not a ListBucketResult`);
  const objects: ListedObject[] = [];
  for (const match of xml.matchAll(/<Contents>([\s\S]*?)<\/Contents>/g)) {
    const key = elementText(match[1]!, "Key");
    const size = Number(elementText(match[1]!, "Size"));
    if (key === undefined || !Number.isSafeInteger(size) || size < 0)
      throw new RepositoryError("corrupt", `${what}: the S3 listing has an entry without a key or size`);
    objects.push({ key, sizeBytes: size });
  }
  const truncated = elementText(xml, "IsTruncated");
  if (truncated !== "true" && truncated !== "false") throw new RepositoryError("corrupt", `${what}: the S3 listing does not say whether it is truncated`);
  const token = elementText(xml, "NextContinuationToken");
  return { objects, isTruncated: truncated === "true", ...(token ? { nextContinuationToken: token } : {}) };
}

/** The upper bound on pages for one listing, so a server that loops on a token cannot hang a refresh. */
const maxPages = 100_000;

/** Every object under the listing, following continuation tokens until a page is not truncated. */
export async function listAllObjects(fetchPage: (continuationToken: string | undefined) => Promise<ListObjectsPage>, what: string): Promise<ListedObject[]> {
  const all: ListedObject[] = [];
  let token: string | undefined;
  const seenTokens = new Set<string>();
  for (let page = 0; page < maxPages; page++) {
    const result = await fetchPage(token);
    all.push(...result.objects);
    if (!result.isTruncated) return all;
    if (result.nextContinuationToken === undefined) {
      throw new RepositoryError("corrupt", `${what}: the S3 listing is truncated but gives no continuation token, so the rest cannot be listed`);
    }
    if (seenTokens.has(result.nextContinuationToken)) throw new RepositoryError("corrupt", `${what}: the S3 listing repeats a continuation token`);
    seenTokens.add(result.nextContinuationToken);
    token = result.nextContinuationToken;
  }
  throw new RepositoryError("corrupt", `${what}: the S3 listing did not end after ${maxPages} pages`);
}
