import { describe, expect, it } from 'vitest';
import { ApiError, BAD_RESPONSE, NETWORK_ERROR, TIMEOUT } from '../src/api';
import { describeError } from '../src/errors';

const e = (status: number, msg = '') => new ApiError(status, msg);

describe('describeError', () => {
  it('says a rejected key was not accepted', () => {
    expect(describeError(e(401, 'invalid API key'), 'set-override', true)).toBe('The key was not accepted. Check it and enter it again.');
  });

  it('asks for a key when there was none', () => {
    expect(describeError(e(401, 'missing API key (header X-API-Key)'), 'read-history', false))
      .toBe('This needs a key: enter a viewer or operator key above.');
  });

  it('says what the key may not do, and what would', () => {
    expect(describeError(e(403, 'API key "dash" (role viewer) may not do this'), 'set-override', true))
      .toBe('This key may not set overrides; that needs an operator key.');
    expect(describeError(e(403), 'remove-override', true)).toBe('This key may not remove overrides; that needs an operator key.');
    expect(describeError(e(403), 'read-audit', true)).toBe('This key may not read the override audit trail; that needs a viewer or operator key.');
    expect(describeError(e(403), 'check-key', true)).toBe('This key may not read the catalog; that needs a viewer or operator key.');
  });

  it('explains not-found answers', () => {
    expect(describeError(e(404, 'product "PA" has no override'), 'remove-override', true))
      .toBe('There is no active override to remove: it may have expired or been removed by someone else.');
    expect(describeError(e(404, 'unknown product_id "ZZ"'), 'read-history', true)).toBe('The server does not know this product (any more).');
    expect(describeError(e(404, 'no such endpoint: /x'), 'read-history', true)).toBe('Not found: no such endpoint: /x.');
  });

  it('passes the server\'s reason for a bad request on', () => {
    expect(describeError(e(400, 'expires_at must be in the future'), 'set-override', true))
      .toBe('The server did not accept this: expires_at must be in the future.');
  });

  it('tells whether a change may have happened when the network fails', () => {
    expect(describeError(e(NETWORK_ERROR), 'read-history', true)).toBe('Could not reach the dynaprice server: check the network connection and try again.');
    expect(describeError(e(NETWORK_ERROR), 'set-override', true)).toMatch(/reload the product to see whether the change was made/);
    expect(describeError(e(TIMEOUT), 'remove-override', true)).toMatch(/may or may not have been made/);
    expect(describeError(e(TIMEOUT), 'read-explanation', true)).toBe('The server did not answer in time. Try again.');
  });

  it('covers server trouble', () => {
    expect(describeError(e(503, 'not ready'), 'set-override', true)).toBe('The server is busy or restarting and nothing was changed. Try again in a moment.');
    expect(describeError(e(503), 'read-history', true)).toBe('The server is busy or restarting. Try again in a moment.');
    expect(describeError(e(500, 'internal error'), 'read-history', true)).toMatch(/^The server failed \(error 500\)/);
    expect(describeError(e(502), 'read-history', true)).toMatch(/error 502/);
    expect(describeError(e(413), 'set-override', true)).toBe('The request is too large for the server.');
    expect(describeError(e(429), 'set-override', true)).toMatch(/Too many requests/);
    expect(describeError(e(418, 'teapot'), 'set-override', true)).toBe('Unexpected answer from the server (HTTP 418: teapot).');
    expect(describeError(e(BAD_RESPONSE), 'load-prices', false)).toMatch(/could not read/);
  });

  it('does not hide bugs', () => {
    expect(describeError(new TypeError('x is undefined'), 'read-history', true)).toMatch(/TypeError: x is undefined/);
  });
});
