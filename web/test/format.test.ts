import { describe, expect, it } from 'vitest';
import { formatAgo, formatChange, formatDateTime, formatDemand, formatPercent, formatPrice, formatWhen } from '../src/format';

describe('format', () => {
  it('formats prices with two decimals and grouping', () => {
    expect(formatPrice(314)).toBe('314.00');
    expect(formatPrice(279.999)).toBe('280.00');
    expect(formatPrice(12345.6)).toBe('12,345.60');
  });

  it('formats demand with up to two decimals', () => {
    expect(formatDemand(9)).toBe('9');
    expect(formatDemand(3.14159)).toBe('3.14');
  });

  it('formats percentages with one decimal', () => {
    expect(formatPercent(3.8177)).toBe('3.8%');
    expect(formatPercent(100)).toBe('100.0%');
    expect(formatPercent(0)).toBe('0.0%');
  });

  it('formats changes with direction, sign and percent', () => {
    expect(formatChange(314, 299)).toEqual({ dir: 'up', text: '+15.00 (+5.0%)', label: 'up 15.00 (5.0%)' });
    expect(formatChange(279.99, 314)).toEqual({ dir: 'down', text: '−34.01 (−10.8%)', label: 'down 34.01 (10.8%)' });
    expect(formatChange(390.65, 390.52).text).toBe('+0.13 (+0.03%)');
    expect(formatChange(314, 314)).toEqual({ dir: 'flat', text: '0.00', label: 'unchanged' });
    expect(formatChange(314, 314.001).dir).toBe('flat'); // below a cent
    expect(formatChange(314, undefined)).toEqual({ dir: 'flat', text: '—', label: 'no change seen yet' });
    expect(formatChange(5, 0).text).toBe('+5.00');
  });

  it('formats ages', () => {
    const now = 1_000_000_000;
    expect(formatAgo(now, now)).toBe('now');
    expect(formatAgo(now + 5000, now)).toBe('now'); // clocks disagree a little
    expect(formatAgo(now - 12_000, now)).toBe('12 s ago');
    expect(formatAgo(now - 5 * 60_000, now)).toBe('5 min ago');
    expect(formatAgo(now - 3 * 3_600_000, now)).toBe('3 h ago');
    expect(formatAgo(now - 49 * 3_600_000, now)).toBe('2 d ago');
  });

  it('formats dates in the reader\'s zone', () => {
    expect(formatDateTime('2026-03-17T02:05:41.734Z', 'en-US', 'UTC')).toBe('Mar 17, 2026, 2:05:41 AM');
    expect(formatDateTime(Date.UTC(2026, 2, 17, 2, 5, 41), 'en-GB', 'Europe/Berlin')).toBe('17 Mar 2026, 03:05:41');
    expect(formatDateTime('2026-03-17T02:05:41.734Z', 'en-US', 'UTC', 'short')).toBe('Mar 17, 2026, 2:05 AM');
    expect(formatDateTime('garbage')).toBe('');
  });

  it('formats times to the minute', () => {
    expect(formatWhen('2026-04-01T00:00:00Z', 'en-US', 'UTC')).toBe('Apr 1, 2026, 12:00 AM');
    expect(formatWhen('garbage')).toBe('');
  });
});
