import './style.css';
import { api } from './api';
import { DetailPanel } from './detail';
import { byId, say, setText } from './dom';
import { describeError } from './errors';
import { KeyStore } from './keystore';
import { browserEnv, feedURL, LiveFeed, type FeedState } from './live';
import { initialQuery, orderFollowsPrices, select, toggleSort, type Query, type SortKey } from './query';
import { PriceStore, tickFromPrice } from './store';
import { PriceTable } from './table';
import type { Source, Tick } from './types';

/** While prices move, rows change places at most this often, so the table stays readable. */
const REORDER_MS = 1000;

const store = new PriceStore();
const keys = new KeyStore(storage('sessionStorage'), storage('localStorage'));
let query: Query = initialQuery;

// Rendering is batched: data changes mark what is stale, and one animation
// frame redraws it however many updates arrived in between.
let frame = 0;
let orderStale = true;
let lastOrder = 0;
let reorderTimer = 0;

const grid = byId('grid');
const table = new PriceTable(grid, byId('viewport'), byId('spacer'), (id) => detail.open(id), () => invalidate());
const detail = new DetailPanel(store, keys, () => grid.focus());

function invalidate(order = false): void {
  orderStale ||= order;
  if (!frame) frame = requestAnimationFrame(draw);
}

function draw(): void {
  frame = 0;
  const now = Date.now();
  if (orderStale) {
    const wait = lastOrder + REORDER_MS - now;
    if (wait <= 0 || !orderFollowsPrices(query)) {
      orderStale = false;
      lastOrder = now;
      const rows = select(store.all, query);
      table.setRows(rows);
      const n = store.all.length;
      byId('count').textContent = rows.length === n ? `${n} products` : `Showing ${rows.length} of ${n} products`;
    } else if (!reorderTimer) {
      reorderTimer = window.setTimeout(() => {
        reorderTimer = 0;
        invalidate();
      }, wait);
    }
  }
  table.render(now);
  detail.render(now);
}

function applyTick(t: Tick, fromFeed: boolean): void {
  const r = store.apply(t, fromFeed);
  if (r === 'stale') return;
  if (t.id === detail.productId) detail.tick(t);
  invalidate(r === 'new' || orderFollowsPrices(query));
}

// --- live feed and connection badge

const conn = byId('conn');
const connSR = byId('conn-sr');
const retry = byId<HTMLButtonElement>('conn-retry');
let feedState: FeedState = { kind: 'connecting' };
const spoken: Record<FeedState['kind'], string> = {
  connecting: 'Connecting to live prices',
  live: 'Live: prices update as they change',
  reconnecting: 'Connection lost: prices may be out of date; reconnecting',
  offline: 'Offline: prices may be out of date',
};
function showState(): void {
  const s = feedState;
  conn.dataset.state = s.kind;
  retry.hidden = s.kind !== 'reconnecting' && s.kind !== 'offline';
  // Screen readers hear the state once; the badge also counts down.
  setText(connSR, spoken[s.kind]);
  switch (s.kind) {
    case 'connecting': setText(conn, 'Connecting…'); break;
    case 'live': setText(conn, 'Live'); break;
    case 'offline': setText(conn, 'Offline: waiting for the network'); break;
    case 'reconnecting': {
      const sec = Math.max(0, Math.ceil((s.retryAt - Date.now()) / 1000));
      setText(conn, sec > 0 ? `Reconnecting in ${sec} s` : 'Reconnecting…');
    }
  }
}
const feed = new LiveFeed(feedURL(location), {
  onSession: () => store.newSession(),
  onTick: (t) => applyTick(t, true),
  onState: (s) => {
    feedState = s;
    showState();
    if (s.kind === 'live') byId('banner').hidden = true; // the snapshot fills in what GET /prices could not
  },
}, browserEnv());
retry.addEventListener('click', () => feed.retryNow());
window.addEventListener('offline', () => feed.wentOffline());
window.addEventListener('online', () => feed.retryNow());
// Once a second: the countdown and the "updated … ago" column.
setInterval(() => {
  if (feedState.kind === 'reconnecting') showState();
  invalidate();
}, 1000);

// --- search, filter, sort

const search = byId<HTMLInputElement>('search');
search.addEventListener('input', () => {
  query = { ...query, text: search.value };
  lastOrder = 0;
  invalidate(true);
});
const sourceFilter = byId<HTMLSelectElement>('source-filter');
sourceFilter.addEventListener('change', () => {
  query = { ...query, source: sourceFilter.value as Source | 'all' };
  lastOrder = 0;
  invalidate(true);
});
for (const b of grid.querySelectorAll<HTMLButtonElement>('[data-sort]')) {
  b.addEventListener('click', () => {
    query = toggleSort(query, b.dataset.sort as SortKey);
    for (const h of grid.querySelectorAll<HTMLElement>('[role=columnheader][aria-sort]')) {
      const k = h.querySelector<HTMLElement>('[data-sort]')?.dataset.sort;
      h.setAttribute('aria-sort', k === query.sort ? (query.dir === 'asc' ? 'ascending' : 'descending') : 'none');
    }
    lastOrder = 0;
    invalidate(true);
  });
}

// --- the operator key

const keyForm = byId<HTMLFormElement>('key-form');
const keyInput = byId<HTMLInputElement>('key-input');
const remember = byId<HTMLInputElement>('key-remember');
const keyStatus = byId('key-status');
const forget = byId<HTMLButtonElement>('key-forget');

function showKey(): void {
  forget.hidden = !keys.value;
  remember.checked = keys.isRemembered;
  keyInput.placeholder = keys.value ? (keys.isRemembered ? 'key remembered on this device' : 'key set for this tab') : 'viewer or operator key';
}

/** Checks the key by reading the catalog, which also gives the products' names. */
async function checkKey(): Promise<void> {
  const key = keys.value;
  if (!key) return;
  say(keyStatus, 'Checking the key…');
  try {
    const r = await api.products(key);
    if (key !== keys.value) return;
    say(keyStatus, keys.isRemembered ? 'Key accepted and remembered on this device.' : 'Key accepted for this tab.');
    if (store.setNames(r.products.map((p) => [p.product_id, p.name ?? '']))) invalidate(true);
  } catch (e) {
    if (key === keys.value) say(keyStatus, describeError(e, 'check-key', true), 'error');
  }
}

keyForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const v = keyInput.value.trim();
  if (!v && !keys.value) {
    say(keyStatus, 'Type a key first.', 'error');
    keyInput.focus();
    return;
  }
  keys.set(v || keys.value, remember.checked);
  keyInput.value = '';
  showKey();
  detail.keyChanged();
  void checkKey();
});
forget.addEventListener('click', () => {
  keys.clear();
  showKey();
  say(keyStatus, 'Key forgotten.');
  detail.keyChanged();
  keyInput.focus();
});

// --- start

async function loadPrices(): Promise<void> {
  const banner = byId('banner');
  try {
    const r = await api.prices();
    for (const row of r.prices) {
      const t = tickFromPrice(row);
      if (t) applyTick(t, false);
    }
    banner.hidden = true;
  } catch (e) {
    // The feed's snapshot fills the table too once it connects.
    banner.textContent = `Could not load prices: ${describeError(e, 'load-prices', false)}`;
    banner.hidden = false;
  }
  invalidate(true);
}

function storage(name: 'sessionStorage' | 'localStorage'): Storage | undefined {
  try {
    return window[name];
  } catch {
    return undefined;
  }
}

showKey();
void loadPrices();
feed.start();
void checkKey();
