import { isSource, type Source, type Tick } from './types';

/** How many recent prices a product keeps for its sparkline. */
export const TREND_LENGTH = 40;

export interface Product {
  readonly id: string;
  name: string;
  price: number;
  /** The price before the latest change seen by this page, if any. */
  previous: number | undefined;
  source: Source;
  demand: number;
  lowest30: number;
  version: number;
  atMs: number;
  /** Recent prices, oldest first, at most TREND_LENGTH. */
  trend: number[];
}

export type ApplyResult = 'new' | 'changed' | 'stale';

const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** Reads a WebSocket message; null unless it is a well-formed price_update. */
export function tickFromMessage(m: unknown): Tick | null {
  if (typeof m !== 'object' || m === null) return null;
  const o = m as Record<string, unknown>;
  if (o.type !== 'price_update' || typeof o.product_id !== 'string' || !finite(o.new_price)) return null;
  const atMs = finite(o.timestamp_ms) ? o.timestamp_ms : finite(o.timestamp) ? o.timestamp * 1000 : NaN;
  return checked({
    id: o.product_id, price: o.new_price, source: o.price_source as Source, demand: exactDemand(o),
    lowest30: o.lowest_30d as number, version: o.version as number, atMs,
  });
}

/** Reads an entry of GET /prices; null if malformed. */
export function tickFromPrice(r: unknown): Tick | null {
  if (typeof r !== 'object' || r === null) return null;
  const o = r as Record<string, unknown>;
  if (typeof o.product_id !== 'string' || typeof o.updated_at !== 'string') return null;
  return checked({
    id: o.product_id, price: o.price as number, source: o.price_source as Source, demand: exactDemand(o),
    lowest30: o.lowest_30d as number, version: o.version as number, atMs: Date.parse(o.updated_at),
  });
}

/** demand_exact (4 decimals) where the server sends it, else demand (a whole number since dynaprice keeps the original's int). */
function exactDemand(o: Record<string, unknown>): number {
  return (finite(o.demand_exact) ? o.demand_exact : o.demand) as number;
}

function checked(t: Tick): Tick | null {
  const ok = t.id !== '' && finite(t.price) && isSource(t.source) && finite(t.demand) && finite(t.lowest30) &&
    Number.isSafeInteger(t.version) && t.version >= 0 && finite(t.atMs);
  return ok ? t : null;
}

/**
 * PriceStore holds the latest known price of every product.
 *
 * Ordering: a tick is applied only if its version is newer than the one held,
 * so an update that arrives late (GET /prices answering after the feed, or a
 * coalesced feed) never moves a price backwards. One exception: the first
 * tick of a product on a new feed connection is the server's current state
 * (the snapshot), so it is taken even when its version is lower — that only
 * happens when the server's data was reset, and holding on to the old
 * version would freeze the product forever.
 */
export class PriceStore {
  /** Products in the order first seen, which is catalog order. */
  readonly all: Product[] = [];
  private readonly byId = new Map<string, Product>();
  private readonly session = new Set<string>();

  get(id: string): Product | undefined {
    return this.byId.get(id);
  }

  /** A new feed connection starts; see the class comment. */
  newSession(): void {
    this.session.clear();
  }

  /** Applies t; fromFeed is true for WebSocket ticks. */
  apply(t: Tick, fromFeed: boolean): ApplyResult {
    const p = this.byId.get(t.id);
    const firstOfSession = fromFeed && !this.session.has(t.id);
    if (fromFeed) this.session.add(t.id);
    if (!p) {
      const np: Product = {
        id: t.id, name: '', price: t.price, previous: undefined, source: t.source, demand: t.demand,
        lowest30: t.lowest30, version: t.version, atMs: t.atMs, trend: [t.price],
      };
      this.byId.set(t.id, np);
      this.all.push(np);
      return 'new';
    }
    const newer = t.version > p.version || (firstOfSession && t.version < p.version);
    if (!newer) return 'stale';
    if (t.price !== p.price) {
      p.previous = p.price;
      p.trend.push(t.price);
      if (p.trend.length > TREND_LENGTH) p.trend.shift();
    }
    p.price = t.price;
    p.source = t.source;
    p.demand = t.demand;
    p.lowest30 = t.lowest30;
    p.version = t.version;
    p.atMs = t.atMs;
    return 'changed';
  }

  /** Sets display names (from GET /products); returns whether any changed. */
  setNames(names: Iterable<[string, string]>): boolean {
    let changed = false;
    for (const [id, name] of names) {
      const p = this.byId.get(id);
      if (p && p.name !== name) {
        p.name = name;
        changed = true;
      }
    }
    return changed;
  }
}
