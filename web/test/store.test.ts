import { describe, expect, it } from 'vitest';
import { PriceStore, TREND_LENGTH, tickFromMessage, tickFromPrice } from '../src/store';
import type { Tick } from '../src/types';

const tick = (version: number, price: number, extra: Partial<Tick> = {}): Tick => ({
  id: 'PA', price, source: 'dynamic', demand: version, lowest30: 299, version, atMs: 1_000 * version, ...extra,
});

describe('tickFromMessage', () => {
  const msg = {
    type: 'price_update', product_id: 'PA', new_price: 314, timestamp: 1773713141, price_source: 'dynamic',
    demand: 9, version: 4, lowest_30d: 299, timestamp_ms: 1773713141734,
  };

  it('reads a price_update', () => {
    expect(tickFromMessage(msg)).toEqual({ id: 'PA', price: 314, source: 'dynamic', demand: 9, lowest30: 299, version: 4, atMs: 1773713141734 });
  });

  it('prefers demand_exact to the whole-number demand', () => {
    expect(tickFromMessage({ ...msg, demand: 4, demand_exact: 3.9874 })?.demand).toBe(3.9874);
  });

  it('falls back to the timestamp in seconds', () => {
    const { timestamp_ms: _, ...old } = msg;
    expect(tickFromMessage(old)?.atMs).toBe(1773713141000);
  });

  it.each([
    null, 'x', 7, [], {}, { ...msg, type: 'hello' }, { ...msg, product_id: 5 }, { ...msg, product_id: '' },
    { ...msg, new_price: '314' }, { ...msg, new_price: null }, { ...msg, price_source: 'magic' }, { ...msg, version: 1.5 },
    { ...msg, version: -1 }, { ...msg, demand: undefined }, { ...msg, timestamp: undefined, timestamp_ms: undefined },
  ])('rejects %j', (m) => {
    expect(tickFromMessage(m)).toBeNull();
  });
});

describe('tickFromPrice', () => {
  it('reads a GET /prices entry', () => {
    const r = { product_id: 'PB', price: 349, demand: 0, price_source: 'base', lowest_30d: 349, version: 1, updated_at: '2026-03-17T02:00:00Z' };
    expect(tickFromPrice(r)).toEqual({ id: 'PB', price: 349, source: 'base', demand: 0, lowest30: 349, version: 1, atMs: Date.UTC(2026, 2, 17, 2) });
  });

  it('prefers demand_exact to the whole-number demand', () => {
    const r = { product_id: 'PD', price: 20, demand: 4, demand_exact: 3.9874, price_source: 'dynamic', lowest_30d: 19, version: 2, updated_at: '2026-03-17T02:00:00Z' };
    expect(tickFromPrice(r)?.demand).toBe(3.9874);
  });

  it.each([null, {}, { product_id: 'PB', updated_at: 'never' }, { product_id: 'PB', price: 1, updated_at: '2026-03-17T02:00:00Z' }])('rejects %j', (r) => {
    expect(tickFromPrice(r)).toBeNull();
  });
});

describe('PriceStore', () => {
  it('adds products in the order first seen', () => {
    const s = new PriceStore();
    expect(s.apply(tick(1, 299), false)).toBe('new');
    expect(s.apply({ ...tick(1, 349), id: 'PB' }, false)).toBe('new');
    expect(s.all.map((p) => p.id)).toEqual(['PA', 'PB']);
    expect(s.get('PA')).toMatchObject({ price: 299, previous: undefined, trend: [299], version: 1 });
  });

  it('applies newer versions and remembers the previous price', () => {
    const s = new PriceStore();
    s.apply(tick(1, 299), false);
    expect(s.apply(tick(4, 314), true)).toBe('changed');
    expect(s.get('PA')).toMatchObject({ price: 314, previous: 299, demand: 4, version: 4, atMs: 4000, trend: [299, 314] });
    // Demand moves, price does not: previous and trend stay.
    expect(s.apply(tick(5, 314), true)).toBe('changed');
    expect(s.get('PA')).toMatchObject({ price: 314, previous: 299, demand: 5, trend: [299, 314] });
  });

  it('drops updates whose version is not newer', () => {
    const s = new PriceStore();
    s.apply(tick(5, 320), true);
    expect(s.apply(tick(5, 999), true)).toBe('stale');
    expect(s.apply(tick(3, 310), true)).toBe('stale');
    expect(s.apply(tick(4, 315), false)).toBe('stale'); // GET /prices answering late
    expect(s.get('PA')).toMatchObject({ price: 320, version: 5 });
  });

  it('takes the snapshot of a new connection even when older (the server was reset)', () => {
    const s = new PriceStore();
    s.apply(tick(1, 299), true);
    s.apply(tick(40, 350), true);
    s.newSession();
    expect(s.apply(tick(2, 301), true)).toBe('changed');
    expect(s.get('PA')).toMatchObject({ price: 301, version: 2 });
    // Later messages of the same connection follow the normal rule.
    expect(s.apply(tick(1, 299), true)).toBe('stale');
    expect(s.apply(tick(3, 302), true)).toBe('changed');
  });

  it('does not let a same-version snapshot count as a change', () => {
    const s = new PriceStore();
    s.apply(tick(7, 330), true);
    s.newSession();
    expect(s.apply(tick(7, 330), true)).toBe('stale');
  });

  it('does not treat GET /prices as a snapshot', () => {
    const s = new PriceStore();
    s.apply(tick(9, 330), true);
    s.newSession();
    expect(s.apply(tick(2, 301), false)).toBe('stale');
  });

  it('keeps a bounded trend', () => {
    const s = new PriceStore();
    for (let v = 1; v <= TREND_LENGTH + 10; v++) s.apply(tick(v, 100 + v), true);
    const t = s.get('PA')!.trend;
    expect(t).toHaveLength(TREND_LENGTH);
    expect(t[t.length - 1]).toBe(100 + TREND_LENGTH + 10);
  });

  it('sets names of known products', () => {
    const s = new PriceStore();
    s.apply(tick(1, 299), false);
    expect(s.setNames([['PA', 'Wireless Headphones'], ['ZZ', 'unknown']])).toBe(true);
    expect(s.setNames([['PA', 'Wireless Headphones']])).toBe(false);
    expect(s.get('PA')!.name).toBe('Wireless Headphones');
  });
});
