// Shapes of the dynaprice HTTP API (docs/API.md) that the dashboard reads.

export type Source = 'base' | 'dynamic' | 'override';

export function isSource(v: unknown): v is Source {
  return v === 'base' || v === 'dynamic' || v === 'override';
}

/** One price observation of one product, from GET /prices or the WebSocket feed. */
export interface Tick {
  id: string;
  price: number;
  source: Source;
  demand: number;
  lowest30: number;
  version: number;
  /** When the price took effect, unix milliseconds. */
  atMs: number;
}

/** A row of GET /history/{id}. */
export interface HistoryPoint {
  price: number;
  event_time: string;
  price_source: Source;
  demand: number;
  version: number;
}

export interface GuardrailStep {
  guardrail: string;
  before: number;
  after: number;
  detail: string;
}

/** GET /price/{id}?explain=1. */
export interface Explanation {
  product_id: string;
  price: number;
  price_source: Source;
  strategy: string;
  base_price: number;
  demand: number;
  total_demand: number;
  strategy_price: number;
  dynamic_price: number;
  guardrails: GuardrailStep[];
  override?: {
    override_price: number;
    reason: string;
    set_by: string;
    since: string;
    expires_at?: string;
  };
  /** What a learning strategy (thompson) knows, per price on its ladder, ascending. */
  learning?: Rung[];
  /** The stock and competitor prices the engine knows of. */
  market?: Market;
  lowest_30d: number;
  version: number;
  updated_at: string;
}

/** One price a learning strategy tries. */
export interface Rung {
  price: number;
  views: number;
  purchases: number;
  /** The rung shown now. */
  shown: boolean;
}

/** A competitor's price. */
export interface Quote {
  competitor: string;
  price: number;
  at: string;
}

/** Where a product stands against its selling plan. */
export interface Selling {
  period_start: string;
  period_end: string;
  /** The stock the period opened with plus its restocks. */
  opening_stock: number;
  /** What the plan means to have left at the end. */
  keep: number;
  /** Stock less keep: what the plan still means to sell. */
  to_sell: number;
  /** What would still be left to sell had sales gone evenly over the period. */
  to_sell_on_plan: number;
  views_per_hour: number;
  /** What the inventory strategy applies to the base price (1 for other strategies). */
  multiplier: number;
}

/** The market signals a price was set on; each part only when known. */
export interface Market {
  stock?: number;
  selling?: Selling;
  competitors?: Quote[];
  /** The lowest fresh quote, which the competitor strategy positions against. */
  reference?: Quote;
}

/** An entry of GET /overrides/{id}, newest first. */
export interface AuditEntry {
  product_id: string;
  override_price: number;
  reason: string;
  set_by: string;
  ended_by?: string;
  /** "removed", "expired" or "replaced". */
  end_reason?: string;
  created_at: string;
  expires_at?: string;
  ended_at?: string;
  active: boolean;
}

/** An entry of GET /products. */
export interface CatalogProduct {
  product_id: string;
  name?: string;
}
