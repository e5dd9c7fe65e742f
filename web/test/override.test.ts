import { describe, expect, it } from 'vitest';
import { checkOverride, type OverrideForm } from '../src/override';

const now = Date.UTC(2026, 2, 17, 12);
const form = (f: Partial<OverrideForm>): OverrideForm => ({ productId: 'PA', price: '279.99', reason: 'promo', expiry: 'never', at: '', ...f });

describe('checkOverride', () => {
  it('builds a body without expiry', () => {
    expect(checkOverride(form({}), now)).toEqual({ ok: true, body: { product_id: 'PA', override_price: 279.99, reason: 'promo' } });
  });

  it('adds ttl_seconds for a relative expiry', () => {
    expect(checkOverride(form({ expiry: '3600' }), now)).toMatchObject({ ok: true, body: { ttl_seconds: 3600 } });
  });

  it('adds expires_at for a date and time, read as local time', () => {
    const r = checkOverride(form({ expiry: 'at', at: '2026-03-18T09:30' }), now);
    expect(r).toMatchObject({ ok: true, body: { expires_at: new Date(2026, 2, 18, 9, 30).toISOString() } });
    expect(r.ok && 'ttl_seconds' in r.body).toBe(false);
  });

  it.each([
    [{ price: '' }, 'price'], [{ price: '0' }, 'price'], [{ price: '-5' }, 'price'], [{ price: 'abc' }, 'price'],
    [{ price: 'Infinity' }, 'price'], [{ reason: '   ' }, 'reason'], [{ reason: 'é'.repeat(251) }, 'reason'],
    [{ expiry: 'at', at: '' }, 'at'], [{ expiry: 'at', at: '2020-01-01T00:00' }, 'at'],
  ] as const)('rejects %j (%s)', (f, field) => {
    const r = checkOverride(form(f), now);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.field).toBe(field);
      expect(r.message).toMatch(/\.$/);
    }
  });

  it('accepts a decimal comma and trims, and rounds to cents', () => {
    expect(checkOverride(form({ price: ' 19,5 ', reason: ' x ' }), now)).toMatchObject({ ok: true, body: { override_price: 19.5, reason: 'x' } });
    expect(checkOverride(form({ price: '10.005' }), now)).toMatchObject({ ok: true, body: { override_price: 10.01 } });
  });

  it('counts the reason in bytes, as the server does', () => {
    expect(checkOverride(form({ reason: 'é'.repeat(250) }), now).ok).toBe(true);
  });
});
