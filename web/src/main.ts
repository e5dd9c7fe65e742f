import './style.css';
import { AnalyticsView } from './analytics';
import { api } from './api';
import type { PageAnswer } from './pages';
import { DetailPanel } from './detail';
import { byId, say, setText } from './dom';
import { describeError } from './errors';
import { KeyStore } from './keystore';
import { browserEnv, feedURL, LiveFeed, type FeedState } from './live';
import { Pager } from './pages';
import { initialQuery, orderFollowsPrices, select, serverSort, toggleSort, type Query, type SortKey } from './query';
import { PriceStore, tickFromPrice, type Product } from './store';
import { PriceTable } from './table';
import type { Source, Tick } from './types';

/** While prices move, rows change places at most this often, so the table stays readable. */
const REORDER_MS = 1000;
/** The next page is read when the viewport comes within this many rows of the last loaded one. */
const LOAD_AHEAD_ROWS = 200;
/** A search is sent to the server once typing pauses this long. */
const SEARCH_DEBOUNCE_MS = 250;

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
const analytics = new AnalyticsView(keys, (id) => store.get(id)?.name ?? '');

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
      // Until the whole catalog is loaded, the table shows the rows of the
      // listing it reads: a prefix of the server's order, which sorting
      // them here keeps as prices move.
      const shown = catalog.done ? store.all : listed(listing);
      const rows = select(shown, query);
      table.setRows(rows);
      const n = store.all.length;
      const all = catalog.done ? `${n} products` : `${n} products loaded`;
      byId('count').textContent = rows.length === n ? all : `Showing ${rows.length} of ${all}`;
    } else if (!reorderTimer) {
      reorderTimer = window.setTimeout(() => {
        reorderTimer = 0;
        invalidate();
      }, wait);
    }
  }
  table.render(now);
  detail.render(now);
  if (table.nearEnd(LOAD_AHEAD_ROWS)) loadMore();
}

// --- pages of GET /prices: the catalog as the user scrolls, searches and sorts

/** The catalog by id, the table's first order; once read to the end, the page holds every product. */
const catalog = new Pager('', 'id', pricesPage, applyRows);
/** The listing the table shows and reads on: the catalog, or the server's search and sort of it. */
let listing = catalog;

/** Reads a page of GET /prices, showing the catalog's currency it names. */
async function pricesPage(q: string, sort: string, after: string | undefined, limit: number): Promise<PageAnswer> {
  const a = await api.pricesPage(q, sort, after, limit);
  if (a.currency) {
    setText(byId('currency'), `in ${a.currency}`);
    setText(byId('d-currency'), a.currency);
  }
  return a;
}

function listed(p: Pager): Product[] {
  const out: Product[] = [];
  for (const id of p.ids) {
    const product = store.get(id);
    if (product) out.push(product);
  }
  return out;
}

/**
 * Picks the listing for the query: none is needed once the whole catalog is
 * loaded (the table filters and sorts it); otherwise the server searches
 * and sorts, unless the query asks for the catalog by id or sorts by
 * change, which only this page knows (then the table sorts what it
 * loaded).
 */
function relist(): void {
  const q = query.text.trim();
  const sort = serverSort(query) ?? 'id';
  let next = listing;
  if (catalog.done || (q === '' && sort === 'id')) next = catalog;
  else if (listing.q !== q || listing.sort !== sort) next = new Pager(q, sort, pricesPage, applyRows);
  if (next === listing) return;
  listing = next;
  lastOrder = 0;
  invalidate(true);
}

function applyRows(rows: unknown[], authoritative: boolean): void {
  for (const row of rows) {
    const t = tickFromPrice(row);
    if (t) applyTick(t, authoritative, true);
  }
}

/** Reads the next page of what the table shows. */
function loadMore(): void {
  const p = catalog.done ? catalog : listing;
  if (p.wantsMore) void load(() => p.more());
}

async function load(read: () => Promise<void>): Promise<void> {
  const banner = byId('banner');
  try {
    await read();
    banner.hidden = true;
  } catch (e) {
    banner.textContent = `Could not load prices: ${describeError(e, 'load-prices', false)}`;
    banner.hidden = false;
  }
  // A page's rows show at once, not at the next reorder: until they do,
  // the table would still look scrolled to its end and ask for page after
  // page.
  lastOrder = 0;
  invalidate(true);
}

/**
 * Applies a price. A product the page has not loaded is added from a
 * listing (listed), or from the feed once the whole catalog is loaded (a
 * new product); otherwise its page brings it when the user gets there.
 */
function applyTick(t: Tick, fromFeed: boolean, listed = false): void {
  if (!listed && !catalog.done && !store.get(t.id)) return;
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
let sessions = 0;
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
  onSession: () => {
    store.newSession();
    // Connected again: what changed while away is read again, as far as
    // the table had been read, and taken as the server's current state.
    // The first connection needs it only if the first page failed.
    sessions++;
    if (sessions > 1 || (!catalog.loading && catalog.loaded === 0)) {
      void load(() => catalog.reload());
      const other = listing;
      if (other !== catalog) void load(() => other.reload());
    }
  },
  onTick: (t) => applyTick(t, true),
  onState: (s) => {
    feedState = s;
    showState();
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
let searchTimer = 0;
search.addEventListener('input', () => {
  query = { ...query, text: search.value };
  lastOrder = 0;
  invalidate(true); // at once among the products loaded
  window.clearTimeout(searchTimer);
  searchTimer = window.setTimeout(() => {
    // Then the server's matches, unless the whole catalog is loaded.
    relist();
  }, SEARCH_DEBOUNCE_MS);
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
    relist();
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
    void analytics.load(); // with the names
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
  void analytics.load();
});
forget.addEventListener('click', () => {
  keys.clear();
  showKey();
  say(keyStatus, 'Key forgotten.');
  detail.keyChanged();
  void analytics.load();
  keyInput.focus();
});

// --- views: live prices, or revenue analytics (#analytics)

const viewButtons = { prices: byId<HTMLButtonElement>('view-prices'), analytics: byId<HTMLButtonElement>('view-analytics') };
function showView(v: 'prices' | 'analytics'): void {
  if (v === 'analytics') detail.close();
  byId('layout').hidden = v !== 'prices';
  analytics.setVisible(v === 'analytics');
  for (const [k, b] of Object.entries(viewButtons)) b.setAttribute('aria-pressed', String(k === v));
  if (location.hash !== (v === 'analytics' ? '#analytics' : '')) history.replaceState(null, '', v === 'analytics' ? '#analytics' : location.pathname + location.search);
}
viewButtons.prices.addEventListener('click', () => showView('prices'));
viewButtons.analytics.addEventListener('click', () => showView('analytics'));

// --- start

function storage(name: 'sessionStorage' | 'localStorage'): Storage | undefined {
  try {
    return window[name];
  } catch {
    return undefined;
  }
}

showKey();
void load(() => catalog.more());
feed.start();
void checkKey();
showView(location.hash === '#analytics' ? 'analytics' : 'prices');
