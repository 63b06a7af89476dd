// Named readiness checks, aggregated the way the Kubernetes API server reports its own /readyz:
// one `[+]name ok` or `[-]name failed: detail` line per check. Checks are synchronous reads of
// state kept fresh elsewhere (a probe loop, the catalog loader), so /readyz never waits on I/O.

export type ReadinessResult = { ok: boolean; detail?: string };
export type ReadinessCheck = () => ReadinessResult;

export type ReadinessReport = {
  ok: boolean;
  checks: { name: string; ok: boolean; detail?: string; informational?: true }[];
};

export type ReadinessOptions = {
  /**
   * Reported in the verbose body but never failing readiness: state a replica answers through
   * rather than one that stops it answering (an unreadable repository is denied with a reason).
   */
  informational?: boolean;
};

export type Readiness = {
  /** Adds a check; the returned function removes it. Names are unique. */
  register(name: string, check: ReadinessCheck, options?: ReadinessOptions): () => void;
  evaluate(): ReadinessReport;
};

export function createReadiness(): Readiness {
  const checks = new Map<string, ReadinessCheck>();
  const informational = new Set<string>();
  return {
    register(name, check, options = {}) {
      if (checks.has(name)) throw new Error(`readiness check ${name} is already registered`);
      checks.set(name, check);
      if (options.informational) informational.add(name);
      return () => {
        if (checks.get(name) === check) {
          checks.delete(name);
          informational.delete(name);
        }
      };
    },
    evaluate() {
      const report: ReadinessReport = { ok: true, checks: [] };
      for (const [name, check] of checks) {
        let result: ReadinessResult;
        try {
          result = check();
        } catch (error) {
          result = { ok: false, detail: `check threw: ${errorMessage(error)}` };
        }
        const isInformational = informational.has(name);
        if (!result.ok && !isInformational) report.ok = false;
        report.checks.push({
          name,
          ok: result.ok,
          ...(result.detail === undefined ? {} : { detail: result.detail }),
          ...(isInformational ? { informational: true as const } : {}),
        });
      }
      return report;
    },
  };
}

/** The Kubernetes /readyz body: "ok" alone when healthy and terse, one line per check otherwise. */
export function formatReadiness(report: ReadinessReport, isVerbose: boolean): string {
  if (report.ok && !isVerbose) return "ok\n";
  let body = "";
  for (const check of report.checks) {
    if (check.ok) body += `[+]${check.name} ok\n`;
    else if (check.informational) body += `[!]${check.name} (not gating readiness): ${check.detail ?? "no detail"}\n`;
    else body += `[-]${check.name} failed: ${check.detail ?? "no detail"}\n`;
  }
  body += report.ok ? "readyz check passed\n" : "readyz check failed\n";
  return body;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
