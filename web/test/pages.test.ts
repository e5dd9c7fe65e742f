import { describe, expect, it } from 'vitest';
import { PAGE_SIZE, Pager, RETRY_MS, type PageAnswer } from '../src/pages';

/** A server listing ids in order, a page at a time, recording each request. */
function server(ids: string[]) {
  const asked: { q: string; sort: string; after: string | undefined; limit: number }[] = [];
  const pending: (() => void)[] = [];
  let hold = false;
  let fail = false;
  const fetch = (q: string, sort: string, after: string | undefined, limit: number): Promise<PageAnswer> => {
    asked.push({ q, sort, after, limit });
    const answer = (): PageAnswer => {
      const list = ids.filter((id) => id.toLowerCase().includes(q.toLowerCase()));
      const start = after === undefined ? 0 : list.indexOf(after) + 1;
      const page = list.slice(start, start + limit);
      return start + limit < list.length ? { prices: page, next: page[page.length - 1] } : { prices: page };
    };
    if (fail) return Promise.reject(new Error('down'));
    if (!hold) return Promise.resolve(answer());
    return new Promise((resolve) => pending.push(() => resolve(answer())));
  };
  return {
    fetch, asked,
    hold: (on: boolean) => { hold = on; },
    fail: (on: boolean) => { fail = on; },
    release: () => pending.splice(0).forEach((f) => f()),
  };
}

const ids = (n: number, prefix = 'P') => Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(5, '0')}`);

describe('Pager', () => {
  it('keeps the ids of the prices it read', async () => {
    const p = new Pager('', 'id', () => Promise.resolve({ prices: [{ product_id: 'PB' }, { product_id: 'PA' }, null, 7] }), () => {});
    await p.more();
    expect([...p.ids]).toEqual(['PB', 'PA']);
  });

  it('reads the listing a page at a time with the cursor, then stops', async () => {
    const s = server(ids(2 * PAGE_SIZE + 5));
    const got: unknown[] = [];
    const p = new Pager('', '', s.fetch, (rows) => got.push(...rows));
    await p.more();
    expect(got.length).toBe(PAGE_SIZE);
    expect(p.done).toBe(false);
    await p.more();
    await p.more();
    expect(got).toEqual(ids(2 * PAGE_SIZE + 5));
    expect(p.done).toBe(true);
    expect(s.asked.map((a) => a.after)).toEqual([undefined, 'P00999', 'P01999']);
    expect(p.ids.size).toBe(0); // the rows are ids here, not prices
    await p.more(); // the end: nothing more is asked
    expect(s.asked.length).toBe(3);
  });

  it('sends its search and keeps one page in flight', async () => {
    const s = server([...ids(3, 'A'), ...ids(3, 'B')]);
    const got: unknown[] = [];
    const p = new Pager('b', '-price', s.fetch, (rows) => got.push(...rows));
    s.hold(true);
    const first = p.more();
    void p.more(); // ignored: a page is loading
    expect(s.asked.length).toBe(1);
    s.release();
    await first;
    expect(s.asked[0]).toMatchObject({ q: 'b', sort: '-price' });
    expect(got).toEqual(ids(3, 'B'));
    expect(p.done).toBe(true);
  });

  it('waits before trying again after a failure', async () => {
    let now = 1000;
    const s = server(ids(10));
    const p = new Pager('', '', s.fetch, () => {}, () => now);
    s.fail(true);
    await expect(p.more()).rejects.toThrow('down');
    s.fail(false);
    await p.more();
    expect(s.asked.length).toBe(1);
    now += RETRY_MS;
    await p.more();
    expect(p.loaded).toBe(10);
  });

  it('reloads as far as it had read, authoritatively, dropping answers from before', async () => {
    const s = server(ids(3 * PAGE_SIZE));
    const seen: [unknown, boolean][] = [];
    const p = new Pager('', '', s.fetch, (rows, auth) => rows.forEach((r) => seen.push([r, auth])));
    await p.more();
    await p.more();
    s.hold(true);
    const stale = p.more(); // asks for the third page, answered after the reload began
    s.hold(false);
    seen.length = 0;
    const reload = p.reload();
    s.release();
    await Promise.all([stale, reload]);
    expect(seen.length).toBe(2 * PAGE_SIZE);
    expect(seen.every(([, auth]) => auth)).toBe(true);
    expect(seen[0]![0]).toBe('P00000');
    expect(p.loaded).toBe(2 * PAGE_SIZE);
    expect(p.done).toBe(false);
  });
});
