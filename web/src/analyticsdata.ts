// The pure part of the analytics view: ranges, totals and money, tested
// without a browser.
import type { components } from './api.gen';

export type AnalyticsAnswer = components['schemas']['Analytics'];
export type AnalyticsGroup = components['schemas']['AnalyticsGroup'];

/** The ranges the picker offers, in hours; the series is by hour up to a week, by day beyond. */
export const RANGES: Record<string, number> = { '24h': 24, '7d': 168, '30d': 720, '90d': 2160, '365d': 8760 };

/** The whole hours [from, to) of a range ending with the current hour, as the API takes them. */
export function rangeOf(hours: number, nowMs: number): { from: string; to: string; by: 'hour' | 'day' } {
  const hour = 3_600_000;
  const to = Math.floor(nowMs / hour) * hour + hour;
  return { from: new Date(to - hours * hour).toISOString(), to: new Date(to).toISOString(), by: hours <= 168 ? 'hour' : 'day' };
}

/** Sums groups into one total, with the ratios as the server computes them. */
export function totals(groups: readonly AnalyticsGroup[]): AnalyticsGroup {
  const t = { views: 0, carts: 0, purchases: 0, units: 0, revenue: 0, cost: 0, list: 0 };
  for (const g of groups) {
    t.views += g.views;
    t.carts += g.carts;
    t.purchases += g.purchases;
    t.units += g.units;
    t.revenue += g.revenue;
    t.cost += g.cost;
    t.list += (g.avg_list_price ?? 0) * g.units;
  }
  const r = (n: number, d: number, digits: number) => (d === 0 ? null : Math.round((n / d) * 10 ** digits) / 10 ** digits);
  const cents = (v: number) => Math.round(v * 100) / 100;
  return {
    key: 'total', views: t.views, carts: t.carts, purchases: t.purchases, units: t.units,
    conversion: r(t.purchases, t.views, 4), revenue: cents(t.revenue), cost: cents(t.cost), margin: cents(t.revenue - t.cost),
    margin_pct: r(100 * (t.revenue - t.cost), t.revenue, 2), avg_price: r(t.revenue, t.units, 2),
    avg_list_price: r(t.list, t.units, 2), price_index: r(t.revenue, t.list, 4),
  };
}

/** Money in the answer's currency, e.g. "€1,234.50". */
export function money(v: number | null | undefined, currency: string): string {
  if (v == null) return '—';
  try {
    return new Intl.NumberFormat('en-US', { style: 'currency', currency }).format(v);
  } catch {
    return `${v.toFixed(2)} ${currency}`;
  }
}

