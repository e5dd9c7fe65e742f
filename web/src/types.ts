// Shapes of the dynaprice HTTP API that the dashboard reads, by the names
// the dashboard uses. They come from api.gen.ts, which openapi-typescript
// generates from docs/openapi.json (`npm run gen:types`; ci.sh fails when
// it is stale): edit the document, not these.

import type { components } from './api.gen';

type Schemas = components['schemas'];

export type Source = Schemas['PriceSource'];

export function isSource(v: unknown): v is Source {
  return v === 'base' || v === 'dynamic' || v === 'override';
}

/**
 * One price observation of one product, from GET /prices or the WebSocket
 * feed (Price or PriceUpdateMessage), as the dashboard keeps it.
 */
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
export type HistoryPoint = Schemas['HistoryPoint'];

export type GuardrailStep = Schemas['GuardrailStep'];

/** GET /price/{id}?explain=1. */
export type Explanation = Schemas['Explanation'];

/** One price a learning strategy tries. */
export type Rung = NonNullable<Explanation['learning']>[number];

/** A competitor's price. */
export type Quote = Schemas['Quote'];

/** Where a product stands against its selling plan. */
export type Selling = Schemas['SellingInfo'];

/** The market signals a price was set on; each part only when known. */
export type Market = Schemas['MarketInfo'];

/** An entry of GET /overrides/{id}, newest first. */
export type AuditEntry = Schemas['OverrideRecord'];

/** The part of an entry of GET /products that the dashboard reads. */
export type CatalogProduct = Pick<Schemas['ProductState'], 'product_id' | 'name'>;
