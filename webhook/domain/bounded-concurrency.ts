// Runs work items a few at a time: a reconcile pass with hundreds of writes, or a catalog refresh
// with hundreds of index blobs to read, should neither go one by one nor open hundreds of
// requests at once (against the API server's priority levels, or the repository's storage).

export async function forEachConcurrently<T>(items: readonly T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++]!;
      await work(item);
    }
  });
  await Promise.all(workers);
}
