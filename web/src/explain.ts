// "Why this price": GET /price/{id}?explain=1 in words. The text is built by
// pure functions (unit-tested); explanation() only puts it into elements.
import { el } from './dom';
import { formatAgo, formatDemand, formatPercent, formatPrice, formatWhen } from './format';
import type { Explanation, GuardrailStep, Market, Rung, Selling } from './types';

/** The time the explanation is read at and how it writes a time; tests fix both. */
export interface Clock {
  nowMs: number;
  when: (at: string) => string;
}

/** At most this many prices in the learning table. */
export const MAX_RUNGS = 8;

const precise = new Intl.NumberFormat('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 4 });
const pct = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });
const guardrailNames: Record<string, string> = {
  max_change: 'Max change', floor: 'Floor', margin_floor: 'Margin floor', ceiling: 'Ceiling', rounding: 'Rounding',
};

/** e.g. "Margin floor: 29.30 → 30.00 (never below unit cost 25 plus 20% margin)". */
export function guardrailLine(g: GuardrailStep): string {
  const name = guardrailNames[g.guardrail] ?? g.guardrail.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());
  const after = formatPrice(g.after);
  let before = formatPrice(g.before);
  if (before === after) before = precise.format(g.before); // rounding: 53.3333 → 53.33, not 53.33 → 53.33
  return `${name}: ${before} → ${after}${g.detail ? ` (${g.detail})` : ''}`;
}

/** Where sales stand against the plan, as the reader sees the rounded figures. */
export function planStatus(s: Selling): string {
  if (s.to_sell <= 0) return 'sell-through target reached';
  if (s.to_sell_on_plan <= 0) return 'period over with stock left';
  if (formatDemand(s.to_sell) === formatDemand(s.to_sell_on_plan)) return 'on plan';
  return s.to_sell < s.to_sell_on_plan ? 'ahead of plan (selling faster than planned)' : 'behind plan (selling slower than planned)';
}

/** The selling plan: a line, and a line of detail. */
export function sellingLines(s: Selling, strategy: string, when: Clock['when']): [string, string] {
  const mult = strategy === 'inventory' || s.multiplier !== 1 ? `, base price ×${s.multiplier.toFixed(2)}` : '';
  const left = s.to_sell > 0 ? `${formatDemand(s.to_sell)} left to sell by ${when(s.period_end)}, against ${formatDemand(s.to_sell_on_plan)} on plan` : `nothing left to sell by ${when(s.period_end)}`;
  const target = s.opening_stock - s.keep;
  const share = s.opening_stock > 0 ? ` (${pct.format((target / s.opening_stock) * 100)}%)` : '';
  return [
    `Selling plan: ${left} → ${planStatus(s)}${mult}`,
    `Period ${when(s.period_start)} – ${when(s.period_end)}: sell ${formatDemand(target)} of ${formatDemand(s.opening_stock)}${share}, keep ${formatDemand(s.keep)}; ` +
      (s.views_per_hour > 0 ? `${formatDemand(s.views_per_hour)} views per hour since the stock is known.` : 'no views since the stock is known.'),
  ];
}

/** e.g. "Competitors: shopC 260.00 (2 h ago, lowest, positioned against); shopB 289.00 (1 h ago)", lowest first. */
export function competitorsLine(m: Market, strategy: string, nowMs: number): string {
  const ref = m.reference;
  const quotes = [...(m.competitors ?? [])].sort((a, b) => a.price - b.price || a.competitor.localeCompare(b.competitor));
  const parts = quotes.map((q) => {
    const age = formatAgo(Date.parse(q.at), nowMs);
    const notes = [age === 'now' ? 'just now' : age];
    if (ref?.competitor === q.competitor) notes.push(strategy === 'competitor' ? 'lowest, positioned against' : 'lowest');
    else if (ref && q.price < ref.price) notes.push('too old to count');
    return `${q.competitor} ${formatPrice(q.price)} (${notes.join(', ')})`;
  });
  return `Competitors: ${parts.join('; ')}${ref ? '' : '; none is recent enough to position against'}`;
}

/** The market signals, one line each (with an optional line of detail). */
export function marketLines(e: Explanation, clock: Clock): [string, string?][] {
  const m = e.market;
  if (!m) return [];
  const out: [string, string?][] = [];
  if (m.stock !== undefined) out.push([`Stock: ${formatDemand(m.stock)} on hand${m.stock <= 0 ? ' (sold out)' : ''}`]);
  if (m.selling) out.push(sellingLines(m.selling, e.strategy, clock.when));
  if (m.competitors?.length) out.push([competitorsLine(m, e.strategy, clock.nowMs)]);
  return out;
}

export interface Learning {
  /** The prices to show, ascending: those with views (the MAX_RUNGS with most) and the one shown now. */
  rows: Rung[];
  /** Prices on the ladder, and how many of them have views. */
  total: number;
  tried: number;
  views: number;
  purchases: number;
}

export function learning(rungs: Rung[], max = MAX_RUNGS): Learning {
  let rows = rungs.filter((r) => r.views > 0 || r.shown);
  if (rows.length > max) {
    const keep = new Set([...rows].sort((a, b) => +b.shown - +a.shown || b.views - a.views).slice(0, max));
    rows = rows.filter((r) => keep.has(r));
  }
  let views = 0, purchases = 0, tried = 0;
  for (const r of rungs) {
    views += r.views;
    purchases += r.purchases;
    if (r.views > 0) tried++;
  }
  return { rows, total: rungs.length, tried, views, purchases };
}

/** Purchases per view, e.g. "3.8%"; "—" without views. */
export function conversion(r: Rung): string {
  return r.views > 0 ? formatPercent((r.purchases / r.views) * 100) : '—';
}

/** e.g. "1 view", "1,234 views". */
function count(n: number, what: string): string {
  return `${formatDemand(n)} ${what}${n === 1 ? '' : 's'}`;
}

/** The learning table's caption. */
export function learningSummary(l: Learning, strategy: string): string {
  if (!l.tried) return `Learning (${strategy}): no views yet at any of its ${l.total} prices.`;
  const more = l.tried > l.rows.filter((r) => r.views > 0).length ? ` The ${l.rows.length} with the most views are listed.` : '';
  return `Learning (${strategy}): ${l.tried} of ${l.total} prices tried, ${count(l.views, 'view')} and ${count(l.purchases, 'purchase')} in all.${more}`;
}

function learningTable(rungs: Rung[], strategy: string): HTMLElement {
  const l = learning(rungs);
  if (!l.tried) return el('p', 'muted', learningSummary(l, strategy));
  const table = el('table', 'learning');
  const head = el('tr');
  for (const h of ['Price', 'Views', 'Purchases', 'Conversion']) {
    const th = el('th', '', h);
    th.scope = 'col';
    head.append(th);
  }
  const body = el('tbody');
  for (const r of l.rows) {
    const tr = el('tr', r.shown ? 'shown' : '');
    const th = el('th', '', `${formatPrice(r.price)}${r.shown ? ' (shown now)' : ''}`);
    th.scope = 'row';
    tr.append(th, el('td', '', formatDemand(r.views)), el('td', '', formatDemand(r.purchases)), el('td', '', conversion(r)));
    body.append(tr);
  }
  const thead = el('thead');
  thead.append(head);
  table.append(el('caption', '', learningSummary(l, strategy)), thead, body);
  return table;
}

function list(lines: [string, string?][]): HTMLElement {
  const ul = el('ul', 'notes');
  for (const [text, detail] of lines) {
    const li = el('li', '', text);
    if (detail) li.append(el('span', 'muted block', detail));
    ul.append(li);
  }
  return ul;
}

/** The explanation's elements. */
export function explanation(e: Explanation, clock: Clock = { nowMs: Date.now(), when: formatWhen }): HTMLElement[] {
  const dl = el('dl', 'facts');
  const row = (k: string, v: string) => {
    const d = el('div');
    d.append(el('dt', '', k), el('dd', '', v));
    dl.append(d);
  };
  row('Strategy', e.strategy);
  row('Base price', formatPrice(e.base_price));
  row('Demand priced on', formatDemand(e.demand));
  row('Total demand', formatDemand(e.total_demand));
  row('Strategy price', formatPrice(e.strategy_price));
  row('After guardrails', formatPrice(e.dynamic_price));
  row('Charged', `${formatPrice(e.price)} (${e.price_source})`);
  const out: HTMLElement[] = [dl];
  const market = marketLines(e, clock);
  if (market.length) out.push(el('p', 'muted', 'Market:'), list(market));
  if (e.learning?.length) out.push(learningTable(e.learning, e.strategy));
  if (e.guardrails.length) {
    out.push(el('p', 'muted', 'Guardrails applied:'), list(e.guardrails.map((g) => [guardrailLine(g)])));
  } else {
    out.push(el('p', 'muted', 'No guardrail changed the price.'));
  }
  if (e.override) out.push(el('p', '', `An override of ${formatPrice(e.override.override_price)} beats the dynamic price.`));
  return out;
}
