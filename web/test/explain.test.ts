import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  competitorsLine, conversion, explanation, guardrailLine, learning, learningSummary, marketLines, planStatus, sellingLines, type Clock,
} from '../src/explain';
import type { Explanation, GuardrailStep, Rung, Selling } from '../src/types';

const NOW = Date.parse('2026-03-16T12:00:00Z');
const clock: Clock = { nowMs: NOW, when: (at) => at.slice(0, 10) };

// The example of docs/API.md: PS, strategy inventory, half way through its period.
const selling: Selling = {
  period_start: '2026-03-01T00:00:00Z', period_end: '2026-04-01T00:00:00Z', opening_stock: 500,
  keep: 99.99999999999997, to_sell: 150.00000000000003, to_sell_on_plan: 200, views_per_hour: 10, multiplier: 1.333333333333333,
};
const base: Explanation = {
  product_id: 'PS', price: 53.33, price_source: 'dynamic', strategy: 'inventory', base_price: 40, demand: 4970, total_demand: 4970,
  strategy_price: 53.33333333333332, dynamic_price: 53.33,
  guardrails: [{ guardrail: 'rounding', before: 53.33333333333332, after: 53.33, detail: 'rounded to cents' }],
  market: {
    stock: 250, selling,
    competitors: [{ competitor: 'shop-c', price: 47, at: '2026-03-16T10:05:00Z' }, { competitor: 'shop-b', price: 44.9, at: '2026-03-16T10:00:00Z' }],
    reference: { competitor: 'shop-b', price: 44.9, at: '2026-03-16T10:00:00Z' },
  },
  lowest_30d: 30, version: 3, updated_at: '2026-03-16T12:00:00Z',
};

function rung(price: number, views: number, purchases: number, shown = false): Rung {
  return { price, views, purchases, shown, in_band: true };
}

describe('guardrailLine', () => {
  it('names the guardrail in words', () => {
    expect(guardrailLine({ guardrail: 'margin_floor', before: 29.302, after: 30, detail: 'never below unit cost 25 plus 20% margin' }))
      .toBe('Margin floor: 29.30 → 30.00 (never below unit cost 25 plus 20% margin)');
    expect(guardrailLine({ guardrail: 'max_change', before: 340, after: 328.9, detail: '' })).toBe('Max change: 340.00 → 328.90');
    // One a newer server may add, outside the documented enum.
    const newRule = 'new_rule' as GuardrailStep['guardrail'];
    expect(guardrailLine({ guardrail: newRule, before: 1, after: 2, detail: 'x' })).toBe('New rule: 1.00 → 2.00 (x)');
  });

  it('shows what rounding changed when two decimals hide it', () => {
    expect(guardrailLine(base.guardrails[0]!)).toBe('Rounding: 53.3333 → 53.33 (rounded to cents)');
  });
});

describe('selling plan', () => {
  it('compares what is left to sell with the plan', () => {
    expect(planStatus(selling)).toBe('ahead of plan (selling faster than planned)');
    expect(planStatus({ ...selling, to_sell: 250 })).toBe('behind plan (selling slower than planned)');
    expect(planStatus({ ...selling, to_sell: 200.001 })).toBe('on plan'); // as the figures read
    expect(planStatus({ ...selling, to_sell: 0 })).toBe('sell-through target reached');
    expect(planStatus({ ...selling, to_sell_on_plan: 0 })).toBe('period over with stock left');
  });

  it('says it in a line and a line of detail', () => {
    expect(sellingLines(selling, 'inventory', clock.when)).toEqual([
      'Selling plan: 150 left to sell by 2026-04-01, against 200 on plan → ahead of plan (selling faster than planned), base price ×1.33',
      'Period 2026-03-01 – 2026-04-01: sell 400 of 500 (80%), keep 100; 10 views per hour since the stock is known.',
    ]);
  });

  it('says when the product had no views', () => {
    expect(sellingLines({ ...selling, views_per_hour: 0 }, 'inventory', clock.when)[1]).toBe(
      'Period 2026-03-01 – 2026-04-01: sell 400 of 500 (80%), keep 100; no views since the stock is known.');
  });

  it('leaves out the multiplier of a strategy that does not apply one', () => {
    expect(sellingLines({ ...selling, multiplier: 1 }, 'thompson', clock.when)[0]).toBe(
      'Selling plan: 150 left to sell by 2026-04-01, against 200 on plan → ahead of plan (selling faster than planned)');
    expect(sellingLines({ ...selling, to_sell: -2, multiplier: 3 }, 'inventory', clock.when)[0]).toBe(
      'Selling plan: nothing left to sell by 2026-04-01 → sell-through target reached, base price ×3.00');
  });
});

describe('competitorsLine', () => {
  it('lists the lowest first with its age, and marks the one positioned against', () => {
    expect(competitorsLine(base.market!, 'competitor', NOW))
      .toBe('Competitors: shop-b 44.90 (2 h ago, lowest, positioned against); shop-c 47.00 (1 h ago)');
    expect(competitorsLine(base.market!, 'inventory', NOW)).toBe('Competitors: shop-b 44.90 (2 h ago, lowest); shop-c 47.00 (1 h ago)');
  });

  it('says which quotes are too old to count', () => {
    const m = { competitors: [...base.market!.competitors!, { competitor: 'old', price: 30, at: '2026-03-10T00:00:00Z' }], reference: base.market!.reference! };
    expect(competitorsLine(m, 'competitor', NOW)).toBe(
      'Competitors: old 30.00 (6 d ago, too old to count); shop-b 44.90 (2 h ago, lowest, positioned against); shop-c 47.00 (1 h ago)');
    expect(competitorsLine({ competitors: [{ competitor: 'x', price: 5, at: '2026-03-01T00:00:00Z' }] }, 'competitor', NOW))
      .toBe('Competitors: x 5.00 (15 d ago); none is recent enough to position against');
    expect(competitorsLine({ competitors: [{ competitor: 'x', price: 5, at: '2026-03-16T12:00:00Z' }], reference: { competitor: 'x', price: 5, at: '' } }, 'seed', NOW))
      .toBe('Competitors: x 5.00 (just now, lowest)');
  });
});

describe('marketLines', () => {
  it('has a line per known signal', () => {
    const lines = marketLines(base, clock);
    expect(lines.map((l) => l[0])).toEqual([
      'Stock: 250 on hand',
      'Selling plan: 150 left to sell by 2026-04-01, against 200 on plan → ahead of plan (selling faster than planned), base price ×1.33',
      'Competitors: shop-b 44.90 (2 h ago, lowest); shop-c 47.00 (1 h ago)',
    ]);
    expect(marketLines({ ...base, market: { stock: 0 } }, clock)).toEqual([['Stock: 0 on hand (sold out)']]);
    expect(marketLines({ ...base, market: { competitors: [] } }, clock)).toEqual([]);
    const { market: _, ...none } = base;
    expect(marketLines(none, clock)).toEqual([]);
  });
});

describe('learning', () => {
  const ladder = Array.from({ length: 22 }, (_, k) => rung(20 + k * 2, 0, 0));

  it('lists the prices with views and the one shown, ascending', () => {
    const rungs = ladder.map((r, k) => (k === 3 ? rung(r.price, 40, 2) : k === 10 ? rung(r.price, 812, 31, true) : k === 12 ? rung(r.price, 9, 0) : r));
    const l = learning(rungs);
    expect(l.rows.map((r) => r.price)).toEqual([26, 40, 44]);
    expect(l).toMatchObject({ total: 22, tried: 3, views: 861, purchases: 33 });
    expect(learningSummary(l, 'thompson')).toBe('Learning (thompson): 3 of 22 prices tried, 861 views and 33 purchases in all.');
  });

  it('keeps the prices with most views, and always the shown one', () => {
    const rungs = ladder.map((r, k) => rung(r.price, k + 1, 0, k === 0));
    const l = learning(rungs, 4);
    expect(l.rows.map((r) => r.views)).toEqual([1, 20, 21, 22]);
    expect(learningSummary(l, 'thompson')).toBe(
      'Learning (thompson): 22 of 22 prices tried, 253 views and 0 purchases in all. The 4 with the most views are listed.');
  });

  it('says when nothing was seen yet', () => {
    const l = learning(ladder.map((r, k) => ({ ...r, shown: k === 5 })));
    expect(l.rows.length).toBe(1);
    expect(learningSummary(l, 'thompson')).toBe('Learning (thompson): no views yet at any of its 22 prices.');
  });

  it('counts one view and one purchase in the singular', () => {
    expect(learningSummary(learning([rung(40, 1, 1, true), rung(44, 0, 0)]), 'thompson'))
      .toBe('Learning (thompson): 1 of 2 prices tried, 1 view and 1 purchase in all.');
  });

  it('writes conversion in percent', () => {
    expect(conversion(rung(40, 812, 31))).toBe('3.8%');
    expect(conversion(rung(40, 3, 3))).toBe('100.0%');
    expect(conversion(rung(40, 47, 0))).toBe('0.0%');
    expect(conversion(rung(40, 0, 0))).toBe('—');
  });
});

// A small stand-in for the DOM: explanation() only creates elements, sets
// classes, text and properties, and appends.
class Node {
  kids: (Node | string)[] = [];
  className = '';
  [prop: string]: unknown;
  constructor(readonly tag: string) {}
  set textContent(t: string) {
    this.kids = t ? [t] : [];
  }
  get textContent(): string {
    return this.kids.map((k) => (typeof k === 'string' ? k : k.textContent)).join('');
  }
  append(...n: (Node | string)[]): void {
    this.kids.push(...n);
  }
  all(tag: string): Node[] {
    return this.kids.flatMap((k) => (typeof k === 'string' ? [] : [...(k.tag === tag ? [k] : []), ...k.all(tag)]));
  }
}

describe('explanation', () => {
  beforeAll(() => vi.stubGlobal('document', { createElement: (tag: string) => new Node(tag) }));
  afterAll(() => vi.unstubAllGlobals());
  const render = (e: Explanation) => {
    const root = new Node('div');
    root.append(...(explanation(e, clock) as unknown as Node[]));
    return root;
  };

  it('shows the market, then the guardrails', () => {
    const root = render(base);
    const text = root.kids.map((k) => (k as Node).textContent);
    expect(text[1]).toBe('Market:');
    expect(root.all('li').map((li) => li.kids[0])).toEqual([
      'Stock: 250 on hand',
      'Selling plan: 150 left to sell by 2026-04-01, against 200 on plan → ahead of plan (selling faster than planned), base price ×1.33',
      'Competitors: shop-b 44.90 (2 h ago, lowest); shop-c 47.00 (1 h ago)',
      'Rounding: 53.3333 → 53.33 (rounded to cents)',
    ]);
    expect(text[3]).toBe('Guardrails applied:');
    expect(root.all('table')).toEqual([]);
  });

  it('shows what thompson learned as a table with headers, the shown price marked in words', () => {
    const { market: _, ...e } = base;
    const root = render({ ...e, strategy: 'thompson', guardrails: [], learning: [rung(36.7, 20, 1), rung(40, 812, 31, true), rung(43.6, 0, 0)] });
    const [table] = root.all('table');
    expect(table!.all('caption')[0]!.textContent).toBe('Learning (thompson): 2 of 3 prices tried, 832 views and 32 purchases in all.');
    const cols = table!.all('thead')[0]!.all('th');
    expect(cols.map((th) => [th.textContent, th.scope])).toEqual([['Price', 'col'], ['Views', 'col'], ['Purchases', 'col'], ['Conversion', 'col']]);
    const rows = table!.all('tbody')[0]!.all('tr');
    expect(rows.map((tr) => tr.kids.map((c) => (c as Node).textContent))).toEqual([
      ['36.70', '20', '1', '5.0%'],
      ['40.00 (shown now)', '812', '31', '3.8%'],
    ]);
    expect(rows.map((tr) => [tr.className, (tr.kids[0] as Node).scope])).toEqual([['', 'row'], ['shown', 'row']]);
    expect(root.kids.map((k) => (k as Node).textContent)).toContain('No guardrail changed the price.');
  });

  it('says so when no price has had views', () => {
    const root = render({ ...base, market: {}, strategy: 'thompson', learning: [rung(40, 0, 0, true)] });
    expect(root.all('table')).toEqual([]);
    expect(root.kids.map((k) => (k as Node).textContent)).toContain('Learning (thompson): no views yet at any of its 1 prices.');
  });
});
