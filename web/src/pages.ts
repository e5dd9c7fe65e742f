/** How many prices the dashboard asks for per page (the server's maximum). */
export const PAGE_SIZE = 1000;
/** After a failed page, the next attempt waits this long. */
export const RETRY_MS = 5000;

/** One page of GET /prices: prices (unchecked) and the next page's cursor, if any. */
export interface PageAnswer {
  prices: unknown[];
  next?: string;
  /** The catalog's currency (ISO 4217). */
  currency?: string;
}

export type FetchPage = (q: string, sort: string, after: string | undefined, limit: number) => Promise<PageAnswer>;

/**
 * Pager reads one listing of GET /prices (the whole catalog, or a search
 * with q, in the order sort asks the server for) a page at a time, as the
 * table needs more rows. At most one page is in flight; reload starts again
 * from the top and drops any answer to a request made before it.
 */
export class Pager {
  /** The product ids of the prices read so far: the rows of this listing that the table can show. */
  readonly ids = new Set<string>();
  private next: string | undefined;
  private gen = 0;
  private retryAt = 0;
  /** Prices read so far. */
  loaded = 0;
  /** Whether the listing has been read to its end. */
  done = false;
  loading = false;

  constructor(
    readonly q: string,
    readonly sort: string,
    private readonly fetch: FetchPage,
    /** Receives each page's prices; authoritative on reloads (see PriceStore). */
    private readonly onRows: (rows: unknown[], authoritative: boolean) => void,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether more() would ask for a page now. */
  get wantsMore(): boolean {
    return !this.done && !this.loading && this.now() >= this.retryAt;
  }

  /** Reads the next page, unless one is in flight, the listing ended or a failure is recent. */
  async more(authoritative = false): Promise<void> {
    if (!this.wantsMore) return;
    const gen = this.gen;
    this.loading = true;
    try {
      const r = await this.fetch(this.q, this.sort, this.next, PAGE_SIZE);
      if (gen !== this.gen) return;
      for (const row of r.prices) {
        const id = (row as { product_id?: unknown } | null)?.product_id;
        if (typeof id === 'string') this.ids.add(id);
      }
      this.onRows(r.prices, authoritative);
      this.loaded += r.prices.length;
      this.next = r.next;
      this.done = r.next === undefined;
    } catch (e) {
      if (gen === this.gen) this.retryAt = this.now() + RETRY_MS;
      throw e;
    } finally {
      if (gen === this.gen) this.loading = false;
    }
  }

  /**
   * Reads the listing again from the top, as far as it had been read (at
   * least one page), marking the prices authoritative: after a reconnect
   * they are the server's current state.
   */
  async reload(): Promise<void> {
    const want = Math.max(this.loaded, 1);
    this.gen++;
    this.next = undefined;
    this.done = false;
    this.loading = false;
    this.retryAt = 0;
    this.loaded = 0;
    const gen = this.gen;
    while (gen === this.gen && !this.done && this.loaded < want) await this.more(true);
  }
}
