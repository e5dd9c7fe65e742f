import { api } from './api';
import { PriceChart } from './chart';
import { overridePeriods } from './chartdata';
import { byId, el, say, setText } from './dom';
import { describeError, type Action } from './errors';
import { explanation } from './explain';
import { formatAgo, formatChange, formatDateTime, formatDemand, formatPrice } from './format';
import type { KeyStore } from './keystore';
import { checkOverride } from './override';
import type { PriceStore } from './store';
import type { AuditEntry, Source, Tick } from './types';

const EXPLAIN_REFRESH_MS = 1000;
const FAILED = Symbol('failed');
const STALE = Symbol('stale');

/** The product detail panel: summary, history chart, override form, explanation, audit trail. */
export class DetailPanel {
  private id = '';
  /** The latest request of each kind; older answers are dropped. */
  private readonly seq = new Map<Action, number>();
  private source: Source | '' = '';
  private pending: Tick[] = [];
  private explainTimer = 0;
  private readonly chart = new PriceChart(byId('chart'), byId('chart-cursor'));
  private readonly panel = byId('detail');
  private readonly form = byId<HTMLFormElement>('override-form');
  private readonly price = byId<HTMLInputElement>('ov-price');
  private readonly reason = byId<HTMLInputElement>('ov-reason');
  private readonly expiry = byId<HTMLSelectElement>('ov-expiry');
  private readonly at = byId<HTMLInputElement>('ov-at');
  private readonly submit = byId<HTMLButtonElement>('ov-submit');
  private readonly remove = byId<HTMLButtonElement>('ov-remove');
  private readonly overrideMsg = byId('override-msg');
  /** Matches style.css: below this width the panel covers the table. */
  private readonly overlay = matchMedia('(max-width: 1099.98px)');

  constructor(private readonly store: PriceStore, private readonly keys: KeyStore, private readonly onClose: () => void) {
    byId('detail-close').addEventListener('click', () => this.close());
    document.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && this.id) this.close();
    });
    byId('zoom-in').addEventListener('click', () => this.chart.zoomBy(0.5));
    byId('zoom-out').addEventListener('click', () => this.chart.zoomBy(2));
    byId('zoom-reset').addEventListener('click', () => this.chart.reset());
    byId('explain-refresh').addEventListener('click', () => void this.loadExplanation());
    this.expiry.addEventListener('change', () => {
      byId('ov-at-field').hidden = this.expiry.value !== 'at';
    });
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.setOverride();
    });
    this.remove.addEventListener('click', () => void this.removeOverride());
    this.overlay.addEventListener('change', () => this.coverUnderlay());
  }

  /** Where the panel covers the page (narrow screens), what it covers is inert: not focusable, not read. */
  private coverUnderlay(): void {
    const covered = !!this.id && this.overlay.matches;
    for (const e of document.querySelectorAll<HTMLElement>('body > header, main')) e.inert = covered;
  }

  get productId(): string {
    return this.id;
  }

  open(id: string): void {
    const p = this.store.get(id);
    if (!p) return;
    const switching = id !== this.id;
    this.id = id;
    this.panel.hidden = false;
    byId('layout').classList.add('with-detail');
    this.coverUnderlay();
    if (switching) {
      this.source = p.source;
      this.pending = [];
      this.chart.clear();
      this.form.reset();
      byId('ov-at-field').hidden = true;
      for (const f of ['price', 'reason', 'at']) this.fieldError(f, '');
      say(this.overrideMsg, '');
      this.render(Date.now());
      this.load();
    }
    byId('detail-title').focus();
  }

  close(): void {
    if (!this.id) return;
    this.id = '';
    this.chart.clear();
    this.panel.hidden = true;
    byId('layout').classList.remove('with-detail');
    this.coverUnderlay();
    this.onClose();
  }

  /** The open product received a live tick. */
  tick(t: Tick): void {
    this.pending.push(t);
    const p = this.store.get(this.id);
    if (p && p.source !== this.source) {
      this.source = p.source;
      void this.loadAudit(); // an override began or ended: the shading and audit change
    }
    if (this.keys.value && !this.explainTimer) {
      this.explainTimer = window.setTimeout(() => {
        this.explainTimer = 0;
        void this.loadExplanation();
      }, EXPLAIN_REFRESH_MS);
    }
  }

  /** Redraws the summary and feeds pending ticks to the chart (once per frame). */
  render(nowMs: number): void {
    const p = this.store.get(this.id);
    if (!p) return;
    for (const t of this.pending) this.chart.append(t);
    this.pending = [];
    setText(byId('detail-title'), p.id);
    setText(byId('detail-name'), p.name);
    setText(byId('d-price'), formatPrice(p.price));
    const badge = byId('d-source');
    setText(badge, p.source);
    badge.className = `badge badge-${p.source}`;
    const c = formatChange(p.price, p.previous);
    setText(byId('d-change'), c.text);
    byId('d-change').dataset.dir = c.dir;
    setText(byId('d-demand'), formatDemand(p.demand));
    setText(byId('d-low'), formatPrice(p.lowest30));
    setText(byId('d-version'), String(p.version));
    setText(byId('d-updated'), formatAgo(p.atMs, nowMs));
    const active = p.source === 'override';
    this.remove.hidden = !active;
    setText(this.submit, active ? 'Update override' : 'Set override');
    if (!this.price.value && document.activeElement !== this.price) this.price.placeholder = formatPrice(p.price);
  }

  /** The key changed: reload what needs it. */
  keyChanged(): void {
    if (this.id) this.load();
  }

  private load(): void {
    void this.loadHistory();
    void this.loadAudit();
    void this.loadExplanation();
  }

  /**
   * Runs a keyed read for the open product and shows its progress or failure
   * in msg. Answers that arrive after the panel moved to another product, or
   * after a newer read of the same kind started, are STALE and must be
   * ignored; FAILED means there is nothing to show.
   */
  private async keyed<T>(action: Action, msg: HTMLElement, what: string, f: (id: string, key: string) => Promise<T>): Promise<T | typeof FAILED | typeof STALE> {
    const id = this.id;
    const key = this.keys.value;
    const seq = (this.seq.get(action) ?? 0) + 1;
    this.seq.set(action, seq);
    const current = () => id === this.id && seq === this.seq.get(action);
    if (!key) {
      say(msg, `Enter a viewer or operator key above to see ${what}.`);
      return FAILED;
    }
    say(msg, 'Loading…');
    try {
      const v = await f(id, key);
      if (!current()) return STALE;
      say(msg, '');
      return v;
    } catch (e) {
      if (!current()) return STALE;
      say(msg, describeError(e, action, true), 'error');
      return FAILED;
    }
  }

  private async loadHistory(): Promise<void> {
    const msg = byId('chart-msg');
    const h = await this.keyed('read-history', msg, 'the price history', (id, key) => api.history(id, key));
    if (h === STALE) return;
    if (h === FAILED) {
      this.chart.clear();
      return;
    }
    if (!this.chart.show(h.history)) say(msg, 'No price changes recorded yet.');
  }

  private async loadAudit(): Promise<void> {
    const msg = byId('audit-msg');
    const a = await this.keyed('read-audit', msg, 'the override audit trail', (id, key) => api.audit(id, key));
    if (a === STALE) return;
    const list = byId('audit');
    if (a === FAILED) {
      list.replaceChildren();
      return;
    }
    list.replaceChildren(...a.overrides.map(auditItem));
    if (!a.overrides.length) say(msg, 'No override has been set on this product.');
    this.chart.setPeriods(overridePeriods(a.overrides, Date.now() / 1000));
  }

  private async loadExplanation(): Promise<void> {
    if (!this.id) return;
    const e = await this.keyed('read-explanation', byId('explain-msg'), 'why the price is what it is', (id, key) => api.explain(id, key));
    if (e === STALE) return;
    byId('explain').replaceChildren(...(e === FAILED ? [] : explanation(e)));
    const o = e === FAILED ? undefined : e.override;
    setText(byId('override-active'), o
      ? `Active: ${formatPrice(o.override_price)} since ${formatDateTime(o.since)} by ${o.set_by}` +
        `${o.reason ? ` (“${o.reason}”)` : ''}; ${o.expires_at ? `ends ${formatDateTime(o.expires_at)}` : 'no expiry'}.`
      : '');
  }

  private fieldError(field: string, msg: string): void {
    const err = byId(`ov-${field}-err`);
    say(err, msg, 'error');
    byId(`ov-${field}`).setAttribute('aria-invalid', msg ? 'true' : 'false');
  }

  private async setOverride(): Promise<void> {
    const id = this.id;
    for (const f of ['price', 'reason', 'at']) this.fieldError(f, '');
    const c = checkOverride({ productId: id, price: this.price.value, reason: this.reason.value, expiry: this.expiry.value, at: this.at.value }, Date.now());
    if (!c.ok) {
      this.fieldError(c.field, c.message);
      byId(`ov-${c.field}`).focus();
      return;
    }
    if (!this.keys.value) {
      say(this.overrideMsg, 'Enter an operator key above to set overrides.', 'error');
      return;
    }
    await this.mutate('set-override', () => api.setOverride(c.body, this.keys.value),
      `Override set: ${id} is now ${formatPrice(c.body.override_price)}.`);
  }

  private async removeOverride(): Promise<void> {
    if (!this.keys.value) {
      say(this.overrideMsg, 'Enter an operator key above to remove overrides.', 'error');
      return;
    }
    const id = this.id;
    await this.mutate('remove-override', () => api.removeOverride(id, this.keys.value), `Override on ${id} removed.`);
  }

  private async mutate(action: Action, f: () => Promise<unknown>, done: string): Promise<void> {
    const id = this.id;
    this.submit.disabled = this.remove.disabled = true;
    say(this.overrideMsg, 'Saving…');
    try {
      await f();
      if (id !== this.id) return;
      say(this.overrideMsg, done);
      if (action === 'set-override') this.form.reset();
      else this.price.focus(); // the remove button is about to disappear: keep focus in the form
      byId('ov-at-field').hidden = true;
      this.load();
    } catch (e) {
      if (id === this.id) say(this.overrideMsg, describeError(e, action, true), 'error');
    } finally {
      this.submit.disabled = this.remove.disabled = false;
    }
  }
}

function auditItem(a: AuditEntry): HTMLLIElement {
  const li = el('li', a.active ? 'active' : '');
  li.append(el('strong', '', formatPrice(a.override_price)), ` set by ${a.set_by} on ${formatDateTime(a.created_at)}`);
  if (a.reason) li.append(` — “${a.reason}”`);
  const end = a.active
    ? a.expires_at ? `active, ends ${formatDateTime(a.expires_at)}` : 'active, no expiry'
    : `${a.end_reason ?? 'ended'}${a.ended_by ? ` by ${a.ended_by}` : ''}${a.ended_at ? ` on ${formatDateTime(a.ended_at)}` : ''}`;
  li.append(el('span', 'muted block', end));
  return li;
}

