import { describe, expect, it } from 'vitest';
import { backoffDelay, defaultBackoff } from '../src/backoff';

describe('backoffDelay', () => {
  it('doubles the step and jitters within its upper half', () => {
    for (let attempt = 0; attempt < 5; attempt++) {
      const cap = defaultBackoff.baseMs * 2 ** attempt;
      expect(backoffDelay(attempt, () => 0)).toBe(cap / 2);
      expect(backoffDelay(attempt, () => 0.999999)).toBe(cap);
      expect(backoffDelay(attempt, () => 0.5)).toBe(cap * 0.75);
    }
  });

  it('is capped', () => {
    expect(backoffDelay(5, () => 1)).toBe(defaultBackoff.maxMs);
    expect(backoffDelay(1000, () => 1)).toBe(defaultBackoff.maxMs);
    expect(backoffDelay(1000, () => 0)).toBe(defaultBackoff.maxMs / 2);
  });

  it('spreads clients out', () => {
    const delays = new Set(Array.from({ length: 50 }, () => backoffDelay(3)));
    expect(delays.size).toBeGreaterThan(10);
    for (const d of delays) {
      expect(d).toBeGreaterThanOrEqual(4000);
      expect(d).toBeLessThanOrEqual(8000);
    }
  });

  it('takes options and treats negative attempts as the first', () => {
    expect(backoffDelay(2, () => 1, { baseMs: 100, maxMs: 250 })).toBe(250);
    expect(backoffDelay(-3, () => 1)).toBe(defaultBackoff.baseMs);
  });
});
