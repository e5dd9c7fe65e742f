import { afterEach, describe, expect, it, vi } from 'vitest';
import { ApiError, BAD_RESPONSE, KEY_HEADER, NETWORK_ERROR, TIMEOUT, api, call } from '../src/api';

function answer(status: number, body: string) {
  const f = vi.fn((_url: string, _init: RequestInit) => Promise.resolve(new Response(body, { status })));
  vi.stubGlobal('fetch', f);
  return f;
}

async function failure(p: Promise<unknown>): Promise<ApiError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ApiError) return e;
    throw e;
  }
  throw new Error('did not fail');
}

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('call', () => {
  it('sends the key in the header, never in the URL, and returns the JSON', async () => {
    const f = answer(200, '{"history":[]}');
    expect(await api.history('P A', 'okey')).toEqual({ history: [] });
    const [url, init] = f.mock.calls[0]!;
    expect(url).toBe('/history/P%20A?limit=500');
    expect((init.headers as Record<string, string>)[KEY_HEADER]).toBe('okey');
    expect(init.method).toBe('GET');
    expect(init.body).toBeUndefined();
  });

  it('sends JSON bodies', async () => {
    const f = answer(200, '{"status":"upserted"}');
    await api.setOverride({ product_id: 'PA', override_price: 1 }, 'okey');
    const [url, init] = f.mock.calls[0]!;
    expect(url).toBe('/override');
    expect(init.method).toBe('POST');
    expect(init.body).toBe('{"product_id":"PA","override_price":1}');
    expect((init.headers as Record<string, string>)['Content-Type']).toBe('application/json');
  });

  it('sends no key header without a key', async () => {
    const f = answer(200, '{"prices":[]}');
    await api.pricesPage('', '', undefined, 1000);
    expect(KEY_HEADER in (f.mock.calls[0]![1].headers as Record<string, string>)).toBe(false);
  });

  it('asks for a page of prices with its cursor and search, encoded', async () => {
    const f = answer(200, '{"prices":[],"next":"PB"}');
    expect(await api.pricesPage('a b&c', '-price', '9.5:P/1', 500)).toEqual({ prices: [], next: 'PB' });
    expect(await api.pricesPage('', '', undefined, 1000)).toEqual({ prices: [], next: 'PB' });
    expect(f.mock.calls.map((c) => c[0])).toEqual(['/prices?limit=500&after=9.5%3AP%2F1&q=a+b%26c&sort=-price', '/prices?limit=1000']);
  });

  it('turns error answers into ApiErrors with the server\'s message', async () => {
    answer(403, '{"error":"API key \\"v\\" (role viewer) may not do this"}');
    const e = await failure(api.removeOverride('PA', 'vkey'));
    expect(e.status).toBe(403);
    expect(e.serverMessage).toBe('API key "v" (role viewer) may not do this');
  });

  it('copes with error pages that are not JSON', async () => {
    answer(502, '<html>Bad Gateway</html>');
    const e = await failure(call('GET', '/prices'));
    expect([e.status, e.serverMessage]).toEqual([502, '']);
  });

  it('reports unreadable success answers', async () => {
    answer(200, 'not json');
    expect((await failure(call('GET', '/prices'))).status).toBe(BAD_RESPONSE);
  });

  it('reports network failures and timeouts', async () => {
    vi.stubGlobal('fetch', () => Promise.reject(new TypeError('Failed to fetch')));
    expect((await failure(call('GET', '/prices'))).status).toBe(NETWORK_ERROR);
    vi.stubGlobal('fetch', () => Promise.reject(new DOMException('timed out', 'TimeoutError')));
    expect((await failure(call('GET', '/prices'))).status).toBe(TIMEOUT);
  });
});
