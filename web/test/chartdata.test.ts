import { describe, expect, it } from 'vitest';
import { MAX_POINTS, appendTick, describeHistory, emptyColumns, fullRange, historyColumns, overridePeriods, zoom } from '../src/chartdata';
import type { AuditEntry, HistoryPoint } from '../src/types';

const h = (sec: number, price: number, source: HistoryPoint['price_source'], version: number): HistoryPoint => ({
  price, event_time: new Date(sec * 1000).toISOString(), price_source: source, demand: 0, version,
});

describe('historyColumns', () => {
  it('puts newest-first rows in time order, one point column per source', () => {
    const c = historyColumns([h(30, 280, 'override', 3), h(20, 314, 'dynamic', 2), h(10, 299, 'base', 1)]);
    expect(c).toEqual([[10, 20, 30], [299, 314, 280], [299, null, null], [null, 314, null], [null, null, 280]]);
  });

  it('orders rows of the same instant by version and skips bad times', () => {
    const c = historyColumns([h(10, 2, 'dynamic', 2), h(10, 1, 'dynamic', 1), { ...h(5, 9, 'base', 9), event_time: 'x' }]);
    expect(c[1]).toEqual([1, 2]);
  });
});

describe('appendTick', () => {
  const t = (sec: number, price: number) => ({ id: 'PA', price, source: 'override' as const, demand: 0, lowest30: 0, version: 1, atMs: sec * 1000 });

  it('appends in order and ignores older ticks', () => {
    const c = historyColumns([h(10, 299, 'base', 1)]);
    expect(appendTick(c, t(20, 279))).toBe(true);
    expect(appendTick(c, t(15, 1))).toBe(false);
    expect(c).toEqual([[10, 20], [299, 279], [299, null], [null, null], [null, 279]]);
  });

  it('keeps at most MAX_POINTS', () => {
    const c = emptyColumns();
    for (let i = 0; i < MAX_POINTS + 3; i++) appendTick(c, t(i, i));
    expect(c.every((col) => col.length === MAX_POINTS)).toBe(true);
    expect(c[0][0]).toBe(3);
  });
});

describe('overridePeriods', () => {
  const a = (created: number, extra: Partial<AuditEntry> = {}): AuditEntry => ({
    product_id: 'PA', override_price: 1, reason: '', set_by: 'ops', created_at: new Date(created * 1000).toISOString(), active: false, ...extra,
  });
  const iso = (s: number) => new Date(s * 1000).toISOString();

  it('turns the audit trail into time ranges', () => {
    const periods = overridePeriods([
      a(500, { active: true }),
      a(300, { active: true, expires_at: iso(350) }), // expired, not yet closed by the engine
      a(100, { ended_at: iso(200) }),
    ], 1000);
    expect(periods).toEqual([{ from: 100, to: 200 }, { from: 300, to: 350 }, { from: 500, to: 1000 }]);
  });

  it('skips malformed entries', () => {
    expect(overridePeriods([a(100, { ended_at: iso(50) }), { ...a(1), created_at: 'x' }], 1000)).toEqual([]);
  });
});

describe('ranges', () => {
  it('covers data and periods', () => {
    const c = historyColumns([h(100, 1, 'base', 1), h(200, 2, 'dynamic', 2)]);
    expect(fullRange(c, [])).toEqual([100, 200]);
    expect(fullRange(c, [{ from: 150, to: 400 }])).toEqual([100, 400]);
    expect(fullRange(historyColumns([h(100, 1, 'base', 1)]), [])).toEqual([40, 160]);
    expect(fullRange(emptyColumns(), [])).toBeNull();
  });

  it('zooms around the centre within bounds', () => {
    expect(zoom(0, 100, 0.5, [0, 100])).toEqual([25, 75]);
    expect(zoom(25, 75, 2, [0, 100])).toEqual([0, 100]);
    expect(zoom(0, 20, 2, [0, 100])).toEqual([0, 40]); // pushed back inside
    expect(zoom(80, 100, 2, [0, 100])).toEqual([60, 100]);
    expect(zoom(0, 100, 10, [0, 100])).toEqual([0, 100]);
    expect(zoom(50, 50.5, 0.5, [0, 100])).toEqual([49.75, 50.75]); // never below a second
  });
});

describe('describeHistory', () => {
  it('summarises the chart in words', () => {
    const c = historyColumns([h(30, 280, 'override', 3), h(20, 314, 'dynamic', 2), h(10, 299, 'base', 1)]);
    expect(describeHistory(c, [{ from: 30, to: 40 }])).toBe('Price history: 3 price changes, from 299.00 to 280.00; lowest 280.00, highest 314.00; 1 override period.');
    expect(describeHistory(emptyColumns(), [])).toBe('No price changes recorded yet.');
  });
});
