import { el, setText } from './dom';
import { formatAgo, formatChange, formatDemand, formatPrice } from './format';
import { sparkPoints } from './sparkline';
import type { Product } from './store';
import { scrollToRow, visibleRange } from './virtual';

/** Row height in CSS pixels; style.css sets the same (--row-h). */
const ROW_HEIGHT = 44;
const OVERSCAN = 6;
const SPARK_W = 80;
const SPARK_H = 24;
const SVG = 'http://www.w3.org/2000/svg';

interface RowEls {
  row: HTMLDivElement;
  id: HTMLSpanElement;
  name: HTMLSpanElement;
  price: HTMLDivElement;
  change: HTMLSpanElement;
  arrow: HTMLSpanElement;
  spark: SVGPolylineElement;
  source: HTMLSpanElement;
  demand: HTMLDivElement;
  low: HTMLDivElement;
  updated: HTMLDivElement;
  /** The product drawn, and its version and trend length then. */
  drawn: string;
}

/**
 * PriceTable renders a virtualised grid: a pool of row elements, enough to
 * fill the viewport, is moved and refilled as the user scrolls, so 10,000
 * products cost as much DOM as 30.
 */
export class PriceTable {
  private rows: Product[] = [];
  private readonly pool: RowEls[] = [];
  private active = -1;

  constructor(
    private readonly grid: HTMLElement,
    private readonly viewport: HTMLElement,
    private readonly spacer: HTMLElement,
    private readonly onOpen: (id: string) => void,
    private readonly onScroll: () => void,
  ) {
    viewport.addEventListener('scroll', () => this.onScroll(), { passive: true });
    viewport.addEventListener('click', (e) => {
      const row = (e.target as Element).closest<HTMLElement>('.row');
      const id = row?.dataset.id;
      if (!id) return;
      this.setActive(this.rows.findIndex((p) => p.id === id));
      this.onOpen(id);
    });
    grid.addEventListener('keydown', (e) => this.key(e));
    grid.addEventListener('focus', () => {
      if (this.active < 0 && this.rows.length) this.setActive(0);
      this.onScroll();
    });
  }

  /** Sets the rows to show, in order; keeps the active product active. */
  setRows(rows: Product[]): void {
    const activeId = this.rows[this.active]?.id;
    this.rows = rows;
    this.active = activeId === undefined ? -1 : rows.findIndex((p) => p.id === activeId);
    this.spacer.style.height = `${rows.length * ROW_HEIGHT}px`;
    this.grid.setAttribute('aria-rowcount', String(rows.length + 1));
    for (const r of this.pool) r.drawn = '';
  }

  /** Whether the viewport shows (or nearly shows) the last of the rows: time to load more. */
  nearEnd(margin: number): boolean {
    const { end } = visibleRange(this.viewport.scrollTop, this.viewport.clientHeight, ROW_HEIGHT, this.rows.length, OVERSCAN);
    return end + margin >= this.rows.length;
  }

  /** Draws the visible rows; cheap when nothing changed. */
  render(nowMs: number): void {
    const { start, end } = visibleRange(this.viewport.scrollTop, this.viewport.clientHeight, ROW_HEIGHT, this.rows.length, OVERSCAN);
    while (this.pool.length < end - start) this.pool.push(this.makeRow());
    let activeRendered = false;
    this.pool.forEach((r, k) => {
      const i = start + k;
      const p = this.rows[i];
      if (!p || i >= end) {
        r.row.hidden = true;
        r.row.removeAttribute('id'); // a hidden row must not keep a product's id
        r.drawn = '';
        return;
      }
      r.row.hidden = false;
      this.fill(r, p, i, nowMs);
      const isActive = i === this.active;
      r.row.classList.toggle('active', isActive);
      activeRendered ||= isActive;
    });
    if (activeRendered) this.grid.setAttribute('aria-activedescendant', rowId(this.rows[this.active]!.id));
    else this.grid.removeAttribute('aria-activedescendant');
  }

  private fill(r: RowEls, p: Product, i: number, nowMs: number): void {
    r.row.style.transform = `translateY(${i * ROW_HEIGHT}px)`;
    r.row.setAttribute('aria-rowindex', String(i + 2));
    setText(r.updated, formatAgo(p.atMs, nowMs));
    const key = `${p.id}\u0000${p.version}\u0000${p.name}\u0000${p.trend.length}`;
    if (r.drawn === key) return;
    r.drawn = key;
    r.row.id = rowId(p.id);
    r.row.dataset.id = p.id;
    r.row.dataset.source = p.source;
    setText(r.id, p.id);
    setText(r.name, p.name);
    setText(r.price, formatPrice(p.price));
    const c = formatChange(p.price, p.previous);
    r.change.parentElement!.dataset.dir = c.dir;
    r.change.parentElement!.setAttribute('aria-label', c.label);
    setText(r.arrow, c.dir === 'up' ? '▲' : c.dir === 'down' ? '▼' : '');
    setText(r.change, c.text);
    r.spark.setAttribute('points', sparkPoints(p.trend, SPARK_W, SPARK_H));
    setText(r.source, p.source);
    r.source.className = `badge badge-${p.source}`;
    setText(r.demand, formatDemand(p.demand));
    setText(r.low, formatPrice(p.lowest30));
  }

  private makeRow(): RowEls {
    const row = el('div', 'row');
    row.setAttribute('role', 'row');
    const cell = (cls: string) => {
      const c = el('div', cls);
      c.setAttribute('role', 'gridcell');
      row.append(c);
      return c;
    };
    const idCell = cell('c-id');
    const id = el('span', 'pid');
    const name = el('span', 'pname');
    idCell.append(id, name);
    const price = cell('c-price num');
    const changeCell = cell('c-change num');
    const arrow = el('span', 'arrow');
    arrow.setAttribute('aria-hidden', 'true');
    const change = el('span');
    changeCell.append(arrow, change);
    const svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('viewBox', `0 0 ${SPARK_W} ${SPARK_H}`);
    svg.setAttribute('aria-hidden', 'true');
    svg.setAttribute('class', 'spark');
    const spark = document.createElementNS(SVG, 'polyline');
    svg.append(spark);
    cell('c-trend').append(svg);
    const source = el('span', 'badge');
    cell('c-source').append(source);
    const demand = cell('c-demand num');
    const low = cell('c-low num');
    const updated = cell('c-updated');
    this.viewport.append(row);
    return { row, id, name, price, change, arrow, spark, source, demand, low, updated, drawn: '' };
  }

  private setActive(i: number): void {
    if (i < 0 || i >= this.rows.length) return;
    this.active = i;
    const top = scrollToRow(i, this.viewport.scrollTop, this.viewport.clientHeight, ROW_HEIGHT);
    if (top !== null) this.viewport.scrollTop = top;
    this.onScroll();
  }

  private key(e: KeyboardEvent): void {
    if (e.target !== this.grid || !this.rows.length) return;
    const page = Math.max(1, Math.floor(this.viewport.clientHeight / ROW_HEIGHT) - 1);
    const moves: Record<string, number> = {
      ArrowDown: this.active + 1, ArrowUp: this.active - 1, PageDown: this.active + page,
      PageUp: this.active - page, Home: 0, End: this.rows.length - 1,
    };
    const to = moves[e.key];
    if (to !== undefined) {
      e.preventDefault();
      this.setActive(Math.min(this.rows.length - 1, Math.max(0, to)));
    } else if ((e.key === 'Enter' || e.key === ' ') && this.active >= 0) {
      e.preventDefault();
      this.onOpen(this.rows[this.active]!.id);
    }
  }
}

function rowId(productId: string): string {
  return `row-${productId}`;
}
