// RFC 3339 times compared as times, to the nanosecond. Kopia records start times with
// nanoseconds, and a restore point given with a fraction or an offset must pick the same snapshot
// whatever form it was written in, so milliseconds (Date.parse) are not precise enough. Also the
// one writer of Kubernetes' MicroTime, the form Lease and Event times take.

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/**
 * Nanoseconds since the epoch, or undefined when `text` is not an RFC 3339 date-time. Impossible
 * dates (February 30, 24:00) are refused rather than rolled over as Date.parse does; digits past
 * the ninth fraction digit are dropped, which keeps every comparison with a nanosecond time exact.
 */
export function parseRfc3339Ns(text: string): bigint | undefined {
  const match = RFC3339.exec(text);
  if (!match) return undefined;
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const offsetHours = match[10] === undefined ? 0 : Number(match[10]);
  const offsetMinutes = match[11] === undefined ? 0 : Number(match[11]);
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  const inRange =
    month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth && hour <= 23 && minute <= 59 && second <= 59 && offsetHours <= 23 && offsetMinutes <= 59;
  if (!inRange) return undefined;
  const utcMs = Date.UTC(year, month - 1, day, hour, minute, second);
  const offsetSign = match[9] === "-" ? -1 : 1;
  const offsetMs = match[9] === undefined ? 0 : offsetSign * (offsetHours * 60 + offsetMinutes) * 60_000;
  const fractionNs = BigInt((match[7] ?? "").slice(0, 9).padEnd(9, "0"));
  return BigInt(utcMs - offsetMs) * 1_000_000n + fractionNs;
}

/**
 * Kubernetes' MicroTime, the form of Lease and Event times: RFC 3339 in UTC with six fraction
 * digits, where toISOString gives three.
 */
export function formatMicroTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}
