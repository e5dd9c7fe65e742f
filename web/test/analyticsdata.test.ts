import { describe, expect, it } from 'vitest';
import { money, rangeOf, totals, type AnalyticsGroup } from '../src/analyticsdata';

const g = (o: Partial<AnalyticsGroup>): AnalyticsGroup => ({
  key: 'x', views: 0, carts: 0, purchases: 0, units: 0, conversion: null, revenue: 0, cost: 0, margin: 0,
  margin_pct: null, avg_price: null, avg_list_price: null, price_index: null, ...o,
});

describe('rangeOf', () => {
  it('ends with the current hour and picks hours up to a week, days beyond', () => {
    const now = Date.parse('2026-03-17T10:20:00Z');
    expect(rangeOf(24, now)).toEqual({ from: '2026-03-16T11:00:00.000Z', to: '2026-03-17T11:00:00.000Z', by: 'hour' });
    expect(rangeOf(168, now).by).toBe('hour');
    expect(rangeOf(720, now)).toEqual({ from: '2026-02-15T11:00:00.000Z', to: '2026-03-17T11:00:00.000Z', by: 'day' });
  });
});

describe('totals', () => {
  it('sums groups and computes the ratios from the sums, not from the groups’ ratios', () => {
    const t = totals([
      g({ views: 10, purchases: 1, units: 2, revenue: 30, cost: 10, avg_list_price: 10 }),
      g({ views: 30, purchases: 3, units: 3, revenue: 27, cost: 12, avg_list_price: 10 }),
    ]);
    expect(t).toMatchObject({ views: 40, purchases: 4, units: 5, revenue: 57, cost: 22, margin: 35, conversion: 0.1,
      avg_price: 11.4, avg_list_price: 10, price_index: 1.14, margin_pct: 61.4 });
  });
  it('has no ratios without views, units or revenue', () => {
    expect(totals([])).toMatchObject({ conversion: null, avg_price: null, price_index: null, margin_pct: null });
  });
});

describe('money', () => {
  it('writes amounts in the catalog’s currency', () => {
    expect(money(1234.5, 'EUR')).toBe('€1,234.50');
    expect(money(3, 'USD')).toBe('$3.00');
    expect(money(null, 'EUR')).toBe('—');
  });
});
