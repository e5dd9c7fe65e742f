const price = new Intl.NumberFormat('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const demand = new Intl.NumberFormat('en-US', { maximumFractionDigits: 2 });
const pct = new Intl.NumberFormat('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 });
const smallPct = new Intl.NumberFormat('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });

export function formatPrice(v: number): string {
  return price.format(v);
}

export function formatDemand(v: number): string {
  return demand.format(v);
}

/** A percentage to one decimal, e.g. "5.0%". */
export function formatPercent(v: number): string {
  return `${pct.format(v)}%`;
}

export type Direction = 'up' | 'down' | 'flat';

export interface Change {
  dir: Direction;
  /** e.g. "+15.00 (+5.0%)"; "—" if there is no previous price. */
  text: string;
  /** Words for screen readers, e.g. "up 15.00 (5.0%)". */
  label: string;
}

/** The change from previous to current. */
export function formatChange(current: number, previous: number | undefined): Change {
  if (previous === undefined) return { dir: 'flat', text: '—', label: 'no change seen yet' };
  const d = Math.round((current - previous) * 100) / 100;
  if (d === 0) return { dir: 'flat', text: '0.00', label: 'unchanged' };
  const rel = Math.abs((d / previous) * 100);
  const share = rel < 0.095 ? `${smallPct.format(rel)}%` : formatPercent(rel);
  const p = previous === 0 ? '' : ` (${d > 0 ? '+' : '−'}${share})`;
  const abs = formatPrice(Math.abs(d));
  const dir: Direction = d > 0 ? 'up' : 'down';
  return { dir, text: `${d > 0 ? '+' : '−'}${abs}${p}`, label: `${dir} ${abs}${p.replace(/[+−]/, '')}` };
}

/** "now", "12 s ago", "5 min ago", "3 h ago", "2 d ago". */
export function formatAgo(atMs: number, nowMs: number): string {
  const s = Math.max(0, Math.floor((nowMs - atMs) / 1000));
  if (s < 2) return 'now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

/** A date and time in the reader's locale and time zone, to the second unless timeStyle says otherwise. */
export function formatDateTime(at: string | number, locale?: string, timeZone?: string, timeStyle: Intl.DateTimeFormatOptions['timeStyle'] = 'medium'): string {
  const d = new Date(at);
  if (Number.isNaN(d.getTime())) return '';
  return d.toLocaleString(locale, { dateStyle: 'medium', timeStyle, timeZone });
}

/** A date and time to the minute, in the reader's locale and time zone. */
export function formatWhen(at: string | number, locale?: string, timeZone?: string): string {
  return formatDateTime(at, locale, timeZone, 'short');
}
