/** The override form's raw values. */
export interface OverrideForm {
  productId: string;
  price: string;
  reason: string;
  /** "never", "at", or a number of seconds. */
  expiry: string;
  /** A datetime-local value (local time), used when expiry is "at". */
  at: string;
}

export interface OverrideBody {
  product_id: string;
  override_price: number;
  reason: string;
  ttl_seconds?: number;
  expires_at?: string;
}

export type Checked =
  | { ok: true; body: OverrideBody }
  | { ok: false; field: 'price' | 'reason' | 'at'; message: string };

const MAX_REASON_BYTES = 500;

/** Validates the form and builds the POST /override body. */
export function checkOverride(f: OverrideForm, nowMs: number): Checked {
  const price = Number(f.price.trim().replace(',', '.'));
  if (f.price.trim() === '' || !Number.isFinite(price) || price <= 0) {
    return { ok: false, field: 'price', message: 'Enter a price greater than 0.' };
  }
  const reason = f.reason.trim();
  if (reason === '') return { ok: false, field: 'reason', message: 'Say why: the reason goes into the audit trail.' };
  if (new TextEncoder().encode(reason).length > MAX_REASON_BYTES) {
    return { ok: false, field: 'reason', message: `Keep the reason under ${MAX_REASON_BYTES} characters.` };
  }
  const body: OverrideBody = { product_id: f.productId, override_price: Math.round(price * 100) / 100, reason };
  if (f.expiry === 'at') {
    const at = f.at ? new Date(f.at).getTime() : NaN; // datetime-local without offset: local time
    if (Number.isNaN(at)) return { ok: false, field: 'at', message: 'Pick the date and time the override ends.' };
    if (at <= nowMs) return { ok: false, field: 'at', message: 'The end must be in the future.' };
    body.expires_at = new Date(at).toISOString();
  } else if (f.expiry !== 'never') {
    const s = Number(f.expiry);
    if (Number.isFinite(s) && s > 0) body.ttl_seconds = s;
  }
  return { ok: true, body };
}
