import { formatPrice } from './format';
import type { AuditEntry, HistoryPoint, Source, Tick } from './types';

/** Columns for uPlot: time (unix s), price (line), and price again per source (points). */
export type Columns = [number[], number[], (number | null)[], (number | null)[], (number | null)[]];

const SOURCE_COLUMN: Record<Source, 2 | 3 | 4> = { base: 2, dynamic: 3, override: 4 };

/** The most points kept while live updates are appended. */
export const MAX_POINTS = 5000;

export function emptyColumns(): Columns {
  return [[], [], [], [], []];
}

/** Columns from GET /history rows (newest first), in time order. */
export function historyColumns(points: readonly HistoryPoint[]): Columns {
  const rows = points
    .map((p) => ({ t: Date.parse(p.event_time) / 1000, p }))
    .filter((r) => Number.isFinite(r.t))
    .sort((a, b) => a.t - b.t || a.p.version - b.p.version);
  const c = emptyColumns();
  for (const r of rows) push(c, r.t, r.p.price, r.p.price_source);
  return c;
}

/** Appends a live tick; ticks older than the last point are ignored. */
export function appendTick(c: Columns, t: Tick): boolean {
  const x = t.atMs / 1000;
  const last = c[0][c[0].length - 1];
  if (last !== undefined && x < last) return false;
  push(c, x, t.price, t.source);
  if (c[0].length > MAX_POINTS) for (const col of c) col.shift();
  return true;
}

function push(c: Columns, x: number, price: number, source: Source): void {
  c[0].push(x);
  c[1].push(price);
  for (const s of ['base', 'dynamic', 'override'] as const) c[SOURCE_COLUMN[s]].push(s === source ? price : null);
}

export interface Period {
  /** Unix seconds. */
  from: number;
  to: number;
}

/** The periods an override was active, from the audit trail, in time order. */
export function overridePeriods(audit: readonly AuditEntry[], nowSec: number): Period[] {
  const out: Period[] = [];
  for (const a of audit) {
    const from = Date.parse(a.created_at) / 1000;
    let to = a.ended_at ? Date.parse(a.ended_at) / 1000 : nowSec;
    if (!a.ended_at && a.expires_at) to = Math.min(to, Date.parse(a.expires_at) / 1000);
    if (Number.isFinite(from) && Number.isFinite(to) && to >= from) out.push({ from, to });
  }
  return out.sort((a, b) => a.from - b.from);
}

/** The time range showing all data and periods; a single instant gets a minute each side. */
export function fullRange(c: Columns, periods: readonly Period[]): [number, number] | null {
  const xs = c[0];
  let lo = xs.length ? xs[0]! : Infinity;
  let hi = xs.length ? xs[xs.length - 1]! : -Infinity;
  for (const p of periods) {
    lo = Math.min(lo, p.from);
    hi = Math.max(hi, p.to);
  }
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return null;
  return hi - lo < 1 ? [lo - 60, hi + 60] : [lo, hi];
}

/**
 * Zooms [min, max] by factor around its centre (factor < 1 zooms in), kept
 * within bounds and never narrower than one second.
 */
export function zoom(min: number, max: number, factor: number, bounds: [number, number]): [number, number] {
  const [blo, bhi] = bounds;
  const span = Math.min(bhi - blo, Math.max(1, (max - min) * factor));
  const mid = (min + max) / 2;
  let lo = mid - span / 2;
  let hi = mid + span / 2;
  if (lo < blo) [lo, hi] = [blo, blo + span];
  if (hi > bhi) [lo, hi] = [bhi - span, bhi];
  return [lo, hi];
}

/** A sentence describing the chart, for readers who cannot see it. */
export function describeHistory(c: Columns, periods: readonly Period[]): string {
  const prices = c[1];
  const n = prices.length;
  if (!n) return 'No price changes recorded yet.';
  const words = `${n} price ${n === 1 ? 'change' : 'changes'}, from ${formatPrice(prices[0]!)} to ${formatPrice(prices[n - 1]!)}` +
    `; lowest ${formatPrice(Math.min(...prices))}, highest ${formatPrice(Math.max(...prices))}`;
  const p = periods.length;
  return `Price history: ${words}${p ? `; ${p} override ${p === 1 ? 'period' : 'periods'}` : ''}.`;
}
