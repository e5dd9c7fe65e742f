import type { AnalyticsAnswer } from './analyticsdata';
import type { PageAnswer } from './pages';
import type { AuditEntry, CatalogProduct, Explanation, HistoryPoint } from './types';

/** The header carrying the API key (the server's default). */
export const KEY_HEADER = 'X-API-Key';

/** ApiError.status for failures that have no HTTP status. */
export const NETWORK_ERROR = 0;
export const TIMEOUT = -1;
export const BAD_RESPONSE = -2;

/** A failed API call: an HTTP error status, or one of the constants above. */
export class ApiError extends Error {
  constructor(readonly status: number, readonly serverMessage: string) {
    super(serverMessage || `HTTP ${status}`);
    this.name = 'ApiError';
  }
}

export interface CallOptions {
  key?: string;
  body?: unknown;
  timeoutMs?: number;
}

/** Calls the API and returns its JSON answer; every failure is an ApiError. */
export async function call<T>(method: string, path: string, o: CallOptions = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (o.key) headers[KEY_HEADER] = o.key;
  const init: RequestInit = { method, headers, cache: 'no-store', signal: AbortSignal.timeout(o.timeoutMs ?? 15_000) };
  if (o.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(o.body);
  }
  let text: string;
  let status: number;
  try {
    const res = await fetch(path, init);
    status = res.status;
    text = await res.text();
  } catch (e) {
    throw new ApiError(e instanceof DOMException && e.name === 'TimeoutError' ? TIMEOUT : NETWORK_ERROR, '');
  }
  let data: unknown = null;
  try {
    data = text === '' ? null : JSON.parse(text);
  } catch {
    // Not JSON: a proxy's error page, for instance.
  }
  if (status < 200 || status > 299) {
    const msg = typeof data === 'object' && data !== null && typeof (data as { error?: unknown }).error === 'string'
      ? (data as { error: string }).error : '';
    throw new ApiError(status, msg);
  }
  if (data === null) throw new ApiError(BAD_RESPONSE, '');
  return data as T;
}

const p = encodeURIComponent;

export const api = {
  /** A page of GET /prices: limit prices after the cursor, only ids containing q, in the order sort asks for ('' for catalog order). */
  pricesPage: (q: string, sort: string, after: string | undefined, limit: number) => {
    const params = new URLSearchParams({ limit: String(limit) });
    if (after !== undefined) params.set('after', after);
    if (q !== '') params.set('q', q);
    if (sort !== '') params.set('sort', sort);
    return call<PageAnswer>('GET', `/prices?${params}`);
  },
  products: (key: string) => call<{ products: CatalogProduct[] }>('GET', '/products', { key }),
  history: (id: string, key: string) => call<{ history: HistoryPoint[] }>('GET', `/history/${p(id)}?limit=500`, { key }),
  explain: (id: string, key: string) => call<Explanation>('GET', `/price/${p(id)}?explain=1`, { key }),
  audit: (id: string, key: string) => call<{ overrides: AuditEntry[] }>('GET', `/overrides/${p(id)}?limit=500`, { key }),
  setOverride: (body: object, key: string) => call<unknown>('POST', '/override', { key, body }),
  removeOverride: (id: string, key: string) => call<unknown>('DELETE', `/override/${p(id)}`, { key }),
  analytics: (q: Record<string, string>, key: string) => call<AnalyticsAnswer>('GET', `/analytics?${new URLSearchParams(q)}`, { key }),
  analyticsCSV: async (q: Record<string, string>, key: string): Promise<string> => {
    let res: Response;
    try {
      res = await fetch(`/analytics?${new URLSearchParams({ ...q, format: 'csv' })}`, { headers: { [KEY_HEADER]: key }, cache: 'no-store' });
    } catch {
      throw new ApiError(NETWORK_ERROR, '');
    }
    const text = await res.text();
    if (!res.ok) {
      let msg = '';
      try {
        msg = (JSON.parse(text) as { error?: string }).error ?? '';
      } catch {
        // not JSON
      }
      throw new ApiError(res.status, msg);
    }
    return text;
  },
};
