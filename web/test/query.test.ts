import { describe, expect, it } from 'vitest';
import { changePct, comparator, initialQuery, matches, orderFollowsPrices, select, serverSort, toggleSort } from '../src/query';
import type { Product } from '../src/store';

const p = (id: string, price: number, extra: Partial<Product> = {}): Product => ({
  id, name: '', price, previous: undefined, source: 'dynamic', demand: 0, lowest30: price, version: 1, atMs: 0, trend: [price], ...extra,
});

const products = [
  p('P10', 50, { name: 'Tablet', demand: 3, atMs: 3, source: 'override' }),
  p('P2', 300, { name: 'Smart Watch', previous: 200, demand: 9, atMs: 1 }),
  p('P1', 100, { name: 'Webcam', previous: 110, demand: 1, atMs: 2, source: 'base' }),
];
const ids = (ps: Product[]) => ps.map((x) => x.id);

describe('select', () => {
  it('sorts ids as the server does, bytewise', () => {
    expect(ids(select(products, initialQuery))).toEqual(['P1', 'P10', 'P2']);
    expect(ids(select(products, { ...initialQuery, dir: 'desc' }))).toEqual(['P2', 'P10', 'P1']);
    expect(ids(select([p('b', 1), p('B', 1), p('a', 1)], initialQuery))).toEqual(['B', 'a', 'b']);
  });

  it.each([
    ['price', 'desc', ['P2', 'P1', 'P10']],
    ['price', 'asc', ['P10', 'P1', 'P2']],
    ['change', 'desc', ['P2', 'P10', 'P1']], // +50 %, 0, −9 %
    ['demand', 'desc', ['P2', 'P10', 'P1']],
    ['updated', 'desc', ['P10', 'P1', 'P2']],
    ['source', 'asc', ['P1', 'P2', 'P10']], // base, dynamic, override
    ['lowest', 'asc', ['P10', 'P1', 'P2']],
  ] as const)('sorts by %s %s', (sort, dir, want) => {
    expect(ids(select(products, { ...initialQuery, sort, dir }))).toEqual(want);
  });

  it('breaks ties by id in the sort\'s direction, as the server does', () => {
    const same = [p('B', 1), p('C', 1), p('A', 1)];
    expect(ids(select(same, { ...initialQuery, sort: 'price', dir: 'desc' }))).toEqual(['C', 'B', 'A']);
    expect(ids(select(same, { ...initialQuery, sort: 'price', dir: 'asc' }))).toEqual(['A', 'B', 'C']);
  });

  it('asks the server for the same order, except by change', () => {
    expect(serverSort(initialQuery)).toBe('id');
    expect(serverSort({ ...initialQuery, sort: 'price', dir: 'desc' })).toBe('-price');
    expect(serverSort({ ...initialQuery, sort: 'lowest', dir: 'asc' })).toBe('lowest');
    expect(serverSort({ ...initialQuery, sort: 'change', dir: 'desc' })).toBeNull();
  });

  it('filters by id or name, case-insensitively, and by source', () => {
    expect(ids(select(products, { ...initialQuery, text: '  p1 ' }))).toEqual(['P1', 'P10']);
    expect(ids(select(products, { ...initialQuery, text: 'WATCH' }))).toEqual(['P2']);
    expect(ids(select(products, { ...initialQuery, source: 'override' }))).toEqual(['P10']);
    expect(ids(select(products, { ...initialQuery, text: 'p1', source: 'base' }))).toEqual(['P1']);
    expect(select(products, { ...initialQuery, text: 'nothing' })).toEqual([]);
  });

  it('does not reorder its input', () => {
    const input = [...products];
    select(input, { ...initialQuery, sort: 'price', dir: 'desc' });
    expect(input).toEqual(products);
  });
});

describe('helpers', () => {
  it('computes the change in percent', () => {
    expect(changePct(products[1]!)).toBe(50);
    expect(changePct(products[0]!)).toBe(0);
    expect(changePct(p('X', 5, { previous: 0 }))).toBe(0);
  });

  it('matches expects lower-case text', () => {
    expect(matches(products[1]!, 'smart', 'all')).toBe(true);
    expect(matches(products[1]!, 'smart', 'base')).toBe(false);
  });

  it('toggles the direction or picks a natural first direction', () => {
    expect(toggleSort(initialQuery, 'id')).toMatchObject({ sort: 'id', dir: 'desc' });
    expect(toggleSort(initialQuery, 'price')).toMatchObject({ sort: 'price', dir: 'desc' });
    expect(toggleSort({ ...initialQuery, sort: 'price', dir: 'desc' }, 'price')).toMatchObject({ dir: 'asc' });
    expect(toggleSort({ ...initialQuery, sort: 'price', dir: 'asc' }, 'id')).toMatchObject({ sort: 'id', dir: 'asc' });
  });

  it('knows when prices move rows', () => {
    expect(orderFollowsPrices(initialQuery)).toBe(false);
    expect(orderFollowsPrices({ ...initialQuery, text: 'pa' })).toBe(false);
    expect(orderFollowsPrices({ ...initialQuery, sort: 'price' })).toBe(true);
    expect(orderFollowsPrices({ ...initialQuery, source: 'override' })).toBe(true);
  });

  it('compares with a stable comparator', () => {
    const c = comparator('demand', 'asc');
    expect(c(products[0]!, products[1]!)).toBeLessThan(0);
    expect(c(products[1]!, products[1]!)).toBe(0);
  });
});
