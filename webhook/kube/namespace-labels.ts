import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "../domain/logger.ts";
import { listWatchRetryDelayMs, type ListWatchRetry } from "./list-watch-retry.ts";
import { NAMESPACES, type KubeObjects } from "./kube-objects.ts";

// Every namespace's labels, kept in memory by one list and a watch, for policies that choose a
// namespace's repository by label selector. An AdmissionReview carries the PVC, not its
// namespace's labels, and the admission path reads memory only. Until the first list has
// arrived, every namespace's labels are unknown, and a decision that needs them is `unknown`.

export type NamespaceLabelsDeps = ListWatchRetry & {
  objects: KubeObjects;
  log: Logger;
};

export type NamespaceLabels = {
  /** Lists once and keeps watching until stop(); resolves after the first list or its failure. */
  start(): Promise<void>;
  /** undefined while unknown: before the first list, or for a namespace not seen (yet). */
  labelsOf(namespace: string): Readonly<Record<string, string>> | undefined;
  stop(): Promise<void>;
};

export function createNamespaceLabels(deps: NamespaceLabelsDeps): NamespaceLabels {
  const log = deps.log.child({ controller: "namespace-labels" });
  const controller = new AbortController();
  let labels = new Map<string, Readonly<Record<string, string>>>();
  let running: Promise<void> | undefined;

  async function listOnce(): Promise<string> {
    const listed = await deps.objects.list(NAMESPACES, {}, controller.signal);
    if (!listed.complete) throw new Error(listed.error);
    labels = new Map(listed.items.map((item) => [item.metadata.name, { ...(item.metadata.labels ?? {}) }]));
    return listed.resourceVersion;
  }

  async function loop(firstList: () => void): Promise<void> {
    let failuresInARow = 0;
    let isFirst = true;
    while (!controller.signal.aborted) {
      try {
        const resourceVersion = await listOnce();
        if (isFirst) firstList();
        isFirst = false;
        failuresInARow = 0;
        await deps.objects.watch(
          NAMESPACES,
          { resourceVersion },
          (event) => {
            if (event.type === "BOOKMARK") return;
            if (event.type === "DELETED") labels.delete(event.object.metadata.name);
            else labels.set(event.object.metadata.name, { ...(event.object.metadata.labels ?? {}) });
          },
          controller.signal,
        );
      } catch (error) {
        if (controller.signal.aborted) break;
        if (isFirst) firstList();
        isFirst = false;
        log.warn({ err: error }, "namespace labels not read; retrying");
        await sleep(listWatchRetryDelayMs(deps, ++failuresInARow), undefined, { signal: controller.signal }).catch(() => undefined);
      }
    }
  }

  return {
    start() {
      return new Promise<void>((resolve) => {
        running ??= loop(resolve);
      });
    },
    labelsOf: (namespace) => labels.get(namespace),
    async stop() {
      controller.abort();
      await running;
    },
  };
}
