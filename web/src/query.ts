import type { Product } from './store';
import type { Source } from './types';

export type SortKey = 'id' | 'price' | 'change' | 'source' | 'demand' | 'lowest' | 'updated';
export type SortDir = 'asc' | 'desc';

export interface Query {
  text: string;
  source: Source | 'all';
  sort: SortKey;
  dir: SortDir;
}

export const initialQuery: Query = { text: '', source: 'all', sort: 'id', dir: 'asc' };


/** Relative change since the previous price, in percent; 0 if none. */
export function changePct(p: Product): number {
  return p.previous === undefined || p.previous === 0 ? 0 : ((p.price - p.previous) / p.previous) * 100;
}

const sourceRank: Record<Source, number> = { base: 0, dynamic: 1, override: 2 };

function numericKey(p: Product, k: Exclude<SortKey, 'id'>): number {
  switch (k) {
    case 'price': return p.price;
    case 'change': return changePct(p);
    case 'source': return sourceRank[p.source];
    case 'demand': return p.demand;
    case 'lowest': return p.lowest30;
    case 'updated': return p.atMs;
  }
}

/**
 * Compares ids as GET /prices?sort= does (bytewise, which for ids without
 * characters beyond U+FFFF is UTF-16 code-unit order): the table sorts the
 * pages the server sorted, so the two must agree or a page's rows would
 * land among the ones before it.
 */
function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * A comparator for the sort: by the value, then by product id so the order
 * is stable, both in the sort's direction, as the server's ?sort= orders.
 */
export function comparator(sort: SortKey, dir: SortDir): (a: Product, b: Product) => number {
  const sign = dir === 'asc' ? 1 : -1;
  if (sort === 'id') return (a, b) => sign * compareIds(a.id, b.id);
  return (a, b) => sign * (numericKey(a, sort) - numericKey(b, sort) || compareIds(a.id, b.id));
}

/**
 * The ?sort= of GET /prices that reads the products in the table's order,
 * or null for the change column: the change is since the price before the
 * latest one this page saw, which the server does not know, so it sorts
 * the products loaded.
 */
export function serverSort(q: Query): string | null {
  if (q.sort === 'change') return null;
  return (q.dir === 'desc' ? '-' : '') + q.sort;
}

/** Whether p passes the search text (id or name, case-insensitive) and the source filter. */
export function matches(p: Product, text: string, source: Query['source']): boolean {
  if (source !== 'all' && p.source !== source) return false;
  if (text === '') return true;
  return p.id.toLowerCase().includes(text) || p.name.toLowerCase().includes(text);
}

/** The products to show, filtered and sorted. */
export function select(products: readonly Product[], q: Query): Product[] {
  const text = q.text.trim().toLowerCase();
  return products.filter((p) => matches(p, text, q.source)).sort(comparator(q.sort, q.dir));
}

/**
 * Whether price updates can change which rows show or their order: true
 * unless the table is sorted by id and not filtered by source.
 */
export function orderFollowsPrices(q: Query): boolean {
  return q.sort !== 'id' || q.source !== 'all';
}

/** The query after a click on a column's sort button. */
export function toggleSort(q: Query, key: SortKey): Query {
  if (q.sort === key) return { ...q, dir: q.dir === 'asc' ? 'desc' : 'asc' };
  // Numbers are most interesting largest first; ids read best A..Z.
  return { ...q, sort: key, dir: key === 'id' ? 'asc' : 'desc' };
}
