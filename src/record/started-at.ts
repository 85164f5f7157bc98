// A record's `startedAt`: when it can be believed, and how long ago it was, in words.

// A record whose startedAt is later than now by more than this was not written at that time.
const FUTURE_TOLERANCE_MS = 60_000;

/** Why the record's `startedAt` cannot be true, or undefined when it can. */
export function impossibleTime(startedAt: string, now: number): string | undefined {
  const at = Date.parse(startedAt);
  if (!Number.isFinite(at)) return `its startedAt (${JSON.stringify(startedAt.slice(0, 40))}) is not a time`;
  if (at > now + FUTURE_TOLERANCE_MS) return `its startedAt (${startedAt}) lies in the future`;
  return undefined;
}

/** How long, in the largest unit that fits: `12 s`, `5 min`, `3 h`, `2 days`. */
export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} days`;
}

/** How long ago `startedAt` was; undefined for a time that cannot be true (unparseable, or in the future). */
export function since(startedAt: string, now = Date.now()): string | undefined {
  if (impossibleTime(startedAt, now) !== undefined) return undefined;
  return duration(now - Date.parse(startedAt));
}
