export interface BackoffOptions {
  /** Delay cap of the first retry. */
  baseMs: number;
  /** Largest delay. */
  maxMs: number;
}

export const defaultBackoff: BackoffOptions = { baseMs: 1000, maxMs: 30_000 };

/**
 * The delay before retry number attempt (0-based): exponential growth capped
 * at maxMs, with "equal jitter" — half of it fixed, half random — so that
 * many browsers reconnecting after a server restart spread out, while no
 * retry comes sooner than half the step.
 */
export function backoffDelay(attempt: number, random: () => number = Math.random, o: BackoffOptions = defaultBackoff): number {
  const cap = Math.min(o.maxMs, o.baseMs * 2 ** Math.min(Math.max(attempt, 0), 30));
  return Math.round(cap / 2 + random() * (cap / 2));
}
