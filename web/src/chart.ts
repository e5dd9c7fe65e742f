import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { appendTick, describeHistory, emptyColumns, fullRange, historyColumns, zoom, type Columns, type Period } from './chartdata';
import { setText } from './dom';
import { formatDateTime, formatPrice } from './format';
import type { HistoryPoint, Tick } from './types';

const HEIGHT = 240;

function cssVar(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

/**
 * PriceChart draws a product's price history with uPlot: a stepped line of
 * the price, a point per change coloured by its source, and shaded override
 * periods. Dragging across it zooms the time axis; the zoom buttons and
 * double-click work too.
 */
export class PriceChart {
  private plot: uPlot | null = null;
  private cols: Columns = emptyColumns();
  private periods: Period[] = [];
  private readonly resize = new ResizeObserver(() => this.plot?.setSize({ width: this.width(), height: HEIGHT }));
  private readonly scheme = matchMedia('(prefers-color-scheme: dark)');
  private readonly rebuild = () => this.draw();

  /** box holds the chart; readout shows the point under the cursor. */
  constructor(private readonly box: HTMLElement, private readonly readout: HTMLElement) {
    this.resize.observe(box);
    box.setAttribute('role', 'img');
    this.scheme.addEventListener('change', this.rebuild);
  }

  /** Shows history (GET /history rows); returns whether there is anything to draw. */
  show(history: readonly HistoryPoint[]): boolean {
    this.cols = historyColumns(history);
    this.draw();
    return this.cols[0].length > 0;
  }

  /** Sets the override periods to shade. */
  setPeriods(periods: Period[]): void {
    const following = this.following();
    this.periods = periods;
    if (!this.plot) return;
    this.label();
    if (following) this.reset();
    else this.plot.redraw(false);
  }

  /** Adds a live price; the view follows it unless the user has zoomed into the past. */
  append(t: Tick): void {
    if (!this.plot) return;
    const following = this.following();
    if (!appendTick(this.cols, t)) return;
    this.plot.setData(this.cols, false);
    this.label();
    if (following) this.reset();
  }

  /** Whether the view shows the latest data (the user has not zoomed into the past). */
  private following(): boolean {
    const all = fullRange(this.cols, this.periods);
    const max = this.plot?.scales.x.max;
    return !all || max === undefined || max >= all[1] - 1e-6;
  }

  zoomBy(factor: number): void {
    const all = fullRange(this.cols, this.periods);
    const x = this.plot?.scales.x;
    if (!this.plot || !all || !x || x.min === undefined || x.max === undefined) return;
    const [min, max] = zoom(x.min, x.max, factor, all);
    this.plot.setScale('x', { min, max });
  }

  reset(): void {
    const all = fullRange(this.cols, this.periods);
    if (this.plot && all) this.plot.setScale('x', { min: all[0], max: all[1] });
  }

  clear(): void {
    this.plot?.destroy();
    this.plot = null;
    this.cols = emptyColumns();
    this.periods = [];
  }

  private label(): void {
    this.box.setAttribute('aria-label', describeHistory(this.cols, this.periods));
  }

  private width(): number {
    return Math.max(200, this.box.clientWidth);
  }

  private draw(): void {
    this.plot?.destroy();
    this.plot = null;
    this.label();
    if (!this.cols[0].length) return;
    const fg = cssVar('--muted');
    const grid = cssVar('--border');
    const shade = cssVar('--shade');
    const colour = { base: cssVar('--base'), dynamic: cssVar('--dynamic'), override: cssVar('--override') };
    const dots = (c: string, label: string): uPlot.Series => ({
      label, stroke: c, fill: c, width: 0, paths: () => null, value: (_u, v) => (v == null ? '—' : formatPrice(v)),
      points: { show: true, size: 7, stroke: c, fill: c },
    });
    const axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    const opts: uPlot.Options = {
      width: this.width(),
      height: HEIGHT,
      scales: { x: { time: true } },
      series: [
        {},
        { label: 'Price', stroke: cssVar('--fg'), width: 1.5, paths: uPlot.paths.stepped!({ align: 1 }), points: { show: false },
          value: (_u, v) => (v == null ? '—' : formatPrice(v)) },
        dots(colour.base, 'Base'),
        dots(colour.dynamic, 'Dynamic'),
        dots(colour.override, 'Override'),
      ],
      axes: [axis, { ...axis, size: 64, values: (_u, vals) => vals.map((v) => formatPrice(v)) }],
      legend: { show: false },
      cursor: {
        drag: { x: true, y: false },
        bind: { dblclick: () => () => (this.reset(), null) },
      },
      hooks: {
        setCursor: [(u) => setText(this.readout, pointText(this.cols, u.cursor.idx))],
        drawClear: [(u) => {
          const ctx = u.ctx;
          const { left, top, width, height } = u.bbox;
          ctx.save();
          ctx.fillStyle = shade;
          for (const p of this.periods) {
            const x0 = Math.max(left, u.valToPos(p.from, 'x', true));
            const x1 = Math.min(left + width, u.valToPos(p.to, 'x', true));
            if (x1 > x0) ctx.fillRect(x0, top, Math.max(1, x1 - x0), height);
          }
          ctx.restore();
        }],
      },
    };
    this.plot = new uPlot(opts, this.cols, this.box);
    this.reset();
  }
}

/** Describes point i, e.g. "Mar 17, 2026, 2:05:41 AM: 314.00 (dynamic)". */
function pointText(c: Columns, i: number | null | undefined): string {
  if (i == null || c[0][i] === undefined) return '';
  const source = c[4][i] != null ? 'override' : c[2][i] != null ? 'base' : 'dynamic';
  return `${formatDateTime(c[0][i]! * 1000)}: ${formatPrice(c[1][i]!)} (${source})`;
}
