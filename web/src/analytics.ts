import uPlot from 'uplot';
import { api } from './api';
import { byId, el, say, setText } from './dom';
import { describeError } from './errors';
import { money, rangeOf, RANGES, totals, type AnalyticsAnswer } from './analyticsdata';
import type { KeyStore } from './keystore';

function ratio(v: number | null | undefined, pct = false): string {
  if (v == null) return '—';
  return pct ? `${v.toFixed(1)}%` : `${(v * 100).toFixed(2)}%`;
}

const REFRESH_MS = 30_000;
const HEIGHT = 220;

/**
 * AnalyticsView is the dashboard's revenue analytics: totals, a chart of
 * revenue and margin over the chosen range, and a table by product or
 * strategy, read from GET /analytics with the viewer key (and as a CSV
 * file). It refreshes itself while the range includes the current hour.
 */
export class AnalyticsView {
  private plot: uPlot | null = null;
  private seq = 0;
  private timer = 0;
  private visible = false;
  private readonly range = byId<HTMLSelectElement>('an-range');
  private readonly by = byId<HTMLSelectElement>('an-by');
  private readonly msg = byId('an-msg');
  private readonly chart = byId('an-chart');
  private readonly resize = new ResizeObserver(() => this.plot?.setSize({ width: this.width(), height: HEIGHT }));

  constructor(private readonly keys: KeyStore, private readonly nameOf: (id: string) => string) {
    this.range.addEventListener('change', () => void this.load());
    this.by.addEventListener('change', () => void this.load());
    byId('an-refresh').addEventListener('click', () => void this.load());
    byId('an-csv').addEventListener('click', () => void this.download());
    this.resize.observe(this.chart);
  }

  private query(): { from: string; to: string; by: 'hour' | 'day' } {
    return rangeOf(RANGES[this.range.value] ?? 24, Date.now());
  }

  /** Shows or hides the view; it reads only while shown. */
  setVisible(v: boolean): void {
    this.visible = v;
    byId('analytics').hidden = !v;
    if (v) void this.load();
    else window.clearTimeout(this.timer);
  }

  /** Reads and shows the analytics of the chosen range; a newer read drops an older one's answer. */
  async load(): Promise<void> {
    window.clearTimeout(this.timer);
    if (!this.visible) return;
    const key = this.keys.value;
    const seq = ++this.seq;
    if (!key) {
      say(this.msg, 'Enter a viewer or operator key above to see revenue analytics.');
      this.clear();
      return;
    }
    const q = this.query();
    say(this.msg, 'Loading…');
    try {
      const [series, groups] = await Promise.all([
        api.analytics({ from: q.from, to: q.to, by: q.by }, key),
        api.analytics({ from: q.from, to: q.to, by: this.by.value, limit: '20' }, key),
      ]);
      if (seq !== this.seq) return;
      say(this.msg, series.groups.length ? '' : 'No shoppers in this range yet.');
      this.show(series, groups);
    } catch (e) {
      if (seq !== this.seq) return;
      say(this.msg, describeError(e, 'read-analytics', true), 'error');
      this.clear();
    }
    this.timer = window.setTimeout(() => void this.load(), REFRESH_MS);
  }

  private clear(): void {
    this.plot?.destroy();
    this.plot = null;
    byId('an-rows').replaceChildren();
    for (const id of ['an-revenue', 'an-units', 'an-conversion', 'an-margin', 'an-index']) setText(byId(id), '—');
  }

  private show(series: AnalyticsAnswer, groups: AnalyticsAnswer): void {
    const cur = series.currency;
    const t = totals(series.groups);
    setText(byId('an-revenue'), money(t.revenue, cur));
    setText(byId('an-units'), String(t.units));
    setText(byId('an-conversion'), ratio(t.conversion));
    setText(byId('an-margin'), `${money(t.margin, cur)} (${ratio(t.margin_pct, true)})`);
    setText(byId('an-index'), t.price_index == null ? '—' : `${money(t.avg_price, cur)} vs ${money(t.avg_list_price, cur)} list (${(t.price_index * 100).toFixed(1)}%)`);
    setText(byId('an-currency'), cur);
    this.draw(series);
    const rows = groups.groups.map((g) => {
      const tr = el('tr');
      const name = groups.by === 'product' ? this.nameOf(g.key) : '';
      const label = el('th', '', g.key === '' ? '(none)' : g.key);
      label.scope = 'row';
      if (name) label.append(el('span', 'muted block', name));
      tr.append(label, el('td', 'num', money(g.revenue, cur)), el('td', 'num', String(g.units)), el('td', 'num', ratio(g.conversion)),
        el('td', 'num', ratio(g.margin_pct, true)), el('td', 'num', money(g.avg_price, cur)), el('td', 'num', money(g.avg_list_price, cur)));
      return tr;
    });
    setText(byId('an-key-head'), groups.by === 'product' ? 'Product' : 'Strategy');
    byId('an-rows').replaceChildren(...rows);
    byId('an-more').hidden = !groups.more;
  }

  private width(): number {
    return Math.max(200, this.chart.clientWidth);
  }

  private draw(a: AnalyticsAnswer): void {
    this.plot?.destroy();
    this.plot = null;
    const xs = a.groups.map((g) => Date.parse(g.start ?? g.key) / 1000);
    const revenue = a.groups.map((g) => g.revenue);
    const margin = a.groups.map((g) => g.margin);
    this.chart.setAttribute('aria-label', `Revenue by ${a.by}: ${a.groups.length} ${a.by}s with shoppers, ${money(totals(a.groups).revenue, a.currency)} in all`);
    if (!xs.length) return;
    const css = (n: string) => getComputedStyle(document.documentElement).getPropertyValue(n).trim();
    const axis = { stroke: css('--muted'), grid: { stroke: css('--border'), width: 1 }, ticks: { stroke: css('--border'), width: 1 } };
    const bars = uPlot.paths.bars!({ size: [0.8, 40] });
    this.plot = new uPlot({
      // The whole range asked for, however few hours had shoppers.
      width: this.width(), height: HEIGHT, scales: { x: { time: true, range: () => [Date.parse(a.from) / 1000, Date.parse(a.to) / 1000] },
        y: { range: (_u, min, max) => [Math.min(0, min), Math.max(1, max * 1.1)] } },
      series: [{}, { label: `Revenue (${a.currency})`, stroke: css('--dynamic'), fill: css('--dynamic'), paths: bars, points: { show: false } },
        { label: `Margin (${a.currency})`, stroke: css('--fg'), width: 1.5, points: { show: xs.length < 50 } }],
      axes: [axis, { ...axis, size: 96, values: (_u, vals) => vals.map((v) => money(v, a.currency)) }],
      legend: { show: true },
    }, [xs, revenue, margin], this.chart);
  }

  /** Downloads the table's groups as CSV (GET /analytics?format=csv, with the key in a header, never the URL). */
  private async download(): Promise<void> {
    const key = this.keys.value;
    if (!key) {
      say(this.msg, 'Enter a viewer or operator key above to download analytics.', 'error');
      return;
    }
    const q = this.query();
    try {
      const csv = await api.analyticsCSV({ from: q.from, to: q.to, by: this.by.value, limit: '1000' }, key);
      const a = el('a');
      a.href = URL.createObjectURL(new Blob([csv], { type: 'text/csv' }));
      a.download = `analytics-by-${this.by.value}.csv`;
      a.click();
      URL.revokeObjectURL(a.href);
    } catch (e) {
      say(this.msg, describeError(e, 'read-analytics', true), 'error');
    }
  }
}
