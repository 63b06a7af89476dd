import { setTimeout as sleep } from "node:timers/promises";
import { judgePolicySupport, type PolicySupport, type VolSyncCapabilities } from "../domain/policy-support.ts";
import type { Policy } from "../domain/policy.ts";
import {
  CUSTOM_RESOURCE_DEFINITIONS,
  REPLICATION_DESTINATIONS,
  REPLICATION_SOURCES,
  type KubeObject,
  type KubeObjects,
  type ResourceKind,
} from "./kube-objects.ts";
import { errorMessage } from "../domain/error-message.ts";
import type { Logger } from "../domain/logger.ts";
import { listWatchRetryDelayMs, type ListWatchRetry } from "./list-watch-retry.ts";

// What the installed VolSync CRDs can hold, read from the CRDs themselves at start and kept
// current with one watch per CRD (fieldSelector metadata.name=…), so upgrading VolSync takes
// effect without a restart. An unknown field would be refused by our strict writes anyway; knowing
// it beforehand lets readiness say why and the generator skip objects that could never run.
//
// A failed read or watch keeps the last state that was read (the loop retries with backoff);
// only CRDs never read, or absent, make the capabilities unknown, which blocks nothing.

export type VolSyncSupportDeps = ListWatchRetry & {
  objects: KubeObjects;
  policy: Pick<Policy, "nfs" | "additionalRepositories">;
  log: Logger;
  /** How long start() waits for the first read of both CRDs. */
  startTimeoutMs: number;
};

export type VolSyncSupport = {
  /** Reads both CRDs once (bounded by startTimeoutMs), then keeps watching them until stop(). */
  start(): Promise<void>;
  capabilities(): VolSyncCapabilities;
  /** The policy judged against the current capabilities. */
  support(): PolicySupport;
  stop(): Promise<void>;
};

/** The CRDs whose schemas decide what pvc-guardian may write: the kinds it generates. */
const WRITTEN_KINDS = [REPLICATION_SOURCES, REPLICATION_DESTINATIONS] as const;

/** `replicationsources.volsync.backube` for the ReplicationSource kind. */
export function crdNameOf(kind: ResourceKind): string {
  return `${kind.plural}.${kind.apiVersion.split("/")[0]}`;
}

type SchemaNode = { properties?: Record<string, SchemaNode>; items?: SchemaNode };

/**
 * Whether the CRD's schema for the version pvc-guardian writes has
 * `spec.kopia.moverVolumes[].volumeSource.nfs`.
 */
export function crdHasNfsMoverVolumes(crd: KubeObject, kind: ResourceKind): boolean {
  const version = kind.apiVersion.split("/")[1];
  const versions = (crd["spec"] as { versions?: { name?: string; schema?: { openAPIV3Schema?: SchemaNode } }[] } | undefined)?.versions ?? [];
  let node: SchemaNode | undefined = versions.find((v) => v.name === version)?.schema?.openAPIV3Schema;
  for (const step of ["spec", "kopia", "moverVolumes", "[]", "volumeSource", "nfs"]) {
    node = step === "[]" ? node?.items : node?.properties?.[step];
  }
  return node !== undefined;
}

type CrdState = { read: "never" } | { read: "absent" } | { read: "present"; hasNfsMoverVolumes: boolean };

export function createVolSyncSupport(deps: VolSyncSupportDeps): VolSyncSupport {
  const { objects, policy, startTimeoutMs } = deps;
  const log = deps.log.child({ controller: "volsync-capabilities" });
  const states = new Map<string, CrdState>(WRITTEN_KINDS.map((kind) => [crdNameOf(kind), { read: "never" }]));
  const lastErrors = new Map<string, string>();
  const stopping = new AbortController();
  let loops: Promise<void>[] = [];
  let current: VolSyncCapabilities = derive();
  let judged: PolicySupport = judgePolicySupport(policy, current);
  let reported: "" | "supported" | "unsupported" | "unknown" = "";
  /** Until start() has waited for the first reads, a half-read state is not worth a log line. */
  let isReporting = false;

  function derive(): VolSyncCapabilities {
    const unread = [...states]
      .filter(([, state]) => state.read !== "present")
      .map(([name, state]) =>
        state.read === "absent" ? `${name} is not installed` : `${name} could not be read (${lastErrors.get(name) ?? "no answer yet"})`,
      );
    if (unread.length > 0) return { known: false, reason: unread.join("; ") };
    const crdsWithoutNfs = [...states].filter(([, state]) => state.read === "present" && !state.hasNfsMoverVolumes).map(([name]) => name);
    return { known: true, hasNfsMoverVolumes: crdsWithoutNfs.length === 0, crdsWithoutNfs };
  }

  function update(name: string, state: CrdState): void {
    states.set(name, state);
    current = derive();
    judged = judgePolicySupport(policy, current);
    report();
  }

  /** Logs once per change of the judgement (or of why it is unknown), never per event. */
  function report(): void {
    if (!isReporting) return;
    // Only the kind of answer counts: the CRDs of one upgrade arrive one watch event apart.
    const summary = !judged.supported ? "unsupported" : current.known ? "supported" : "unknown";
    if (summary === reported) return;
    const wasUnsupported = reported === "unsupported";
    reported = summary;
    if (!judged.supported) log.error({ crds: [...states.keys()] }, `pvc-guardian cannot back up with this policy: ${judged.problem}`);
    else if (!current.known)
      log.warn(
        { reason: current.reason },
        "volsync crd capabilities unknown; treating the policy as supported (strict writes still refuse fields the crds lack)",
      );
    else if (wasUnsupported) log.info({ crds: [...states.keys()] }, "volsync crds now support the policy");
  }

  async function follow(kind: ResourceKind, firstRead: () => void): Promise<void> {
    const name = crdNameOf(kind);
    const fieldSelector = `metadata.name=${name}`;
    const signal = stopping.signal;
    let failures = 0;
    while (!signal.aborted) {
      try {
        const list = await objects.list(CUSTOM_RESOURCE_DEFINITIONS, { fieldSelector }, signal);
        if (!list.complete) throw new Error(list.error);
        const crd = list.items.find((item) => item.metadata.name === name);
        update(name, crd === undefined ? { read: "absent" } : { read: "present", hasNfsMoverVolumes: crdHasNfsMoverVolumes(crd, kind) });
        firstRead();
        await objects.watch(
          CUSTOM_RESOURCE_DEFINITIONS,
          { fieldSelector, resourceVersion: list.resourceVersion },
          (event) => {
            if (event.type === "BOOKMARK" || event.object.metadata.name !== name) return;
            update(name, event.type === "DELETED" ? { read: "absent" } : { read: "present", hasNfsMoverVolumes: crdHasNfsMoverVolumes(event.object, kind) });
          },
          signal,
        );
        // The server ended the watch (its timeout): list again, which also catches up on any
        // change between the watch's end and the next one.
        failures = 0;
        lastErrors.delete(name);
      } catch (error) {
        if (signal.aborted) return;
        const message = errorMessage(error);
        if (lastErrors.get(name) !== message) log.warn({ kind: "CustomResourceDefinition", name, err: error }, "volsync crd not read; retrying");
        lastErrors.set(name, message);
        firstRead();
        await sleep(listWatchRetryDelayMs(deps, ++failures), undefined, { signal }).catch(() => undefined);
      }
    }
  }

  return {
    async start() {
      const firstReads = WRITTEN_KINDS.map(() => Promise.withResolvers<void>());
      loops = WRITTEN_KINDS.map((kind, i) => follow(kind, () => firstReads[i]!.resolve()));
      const waited = new AbortController();
      const gaveUp = sleep(startTimeoutMs, undefined, { signal: AbortSignal.any([waited.signal, stopping.signal]) }).catch(() => undefined);
      await Promise.race([Promise.all(firstReads.map((r) => r.promise)), gaveUp]);
      waited.abort();
      isReporting = true;
      current = derive();
      judged = judgePolicySupport(policy, current);
      report();
    },
    capabilities: () => current,
    support: () => judged,
    async stop() {
      stopping.abort();
      await Promise.all(loops);
    },
  };
}
