import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { forEachConcurrently } from "../../../webhook/domain/bounded-concurrency.ts";

describe("forEachConcurrently", () => {
  it("works every item once and never has more than the limit in flight", async () => {
    const items = Array.from({ length: 20 }, (_, index) => index);
    const seen: number[] = [];
    let inFlight = 0;
    let mostInFlight = 0;
    await forEachConcurrently(items, 3, async (item) => {
      inFlight += 1;
      mostInFlight = Math.max(mostInFlight, inFlight);
      await new Promise((resolve) => setImmediate(resolve));
      seen.push(item);
      inFlight -= 1;
    });
    assert.deepEqual(
      seen.toSorted((a, b) => a - b),
      items,
    );
    assert.equal(mostInFlight, 3);
  });

  it("resolves at once for no items", async () => {
    await forEachConcurrently([], 4, async () => assert.fail("no work expected"));
  });

  it("rejects with the first failure", async () => {
    await assert.rejects(
      forEachConcurrently([1, 2, 3], 2, async (item) => {
        if (item === 2) throw new Error("item 2 failed");
      }),
      /item 2 failed/,
    );
  });
});
