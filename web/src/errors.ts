import { ApiError, BAD_RESPONSE, NETWORK_ERROR, TIMEOUT } from './api';

export type Action =
  | 'load-prices' | 'check-key' | 'read-history' | 'read-explanation' | 'read-audit' | 'set-override' | 'remove-override'
  | 'read-analytics';

const actions: Record<Action, { verb: string; needs: string; changes: boolean }> = {
  'load-prices': { verb: 'load prices', needs: 'no key', changes: false },
  'check-key': { verb: 'read the catalog', needs: 'a viewer or operator key', changes: false },
  'read-history': { verb: 'read price history', needs: 'a viewer or operator key', changes: false },
  'read-explanation': { verb: 'read price explanations', needs: 'a viewer or operator key', changes: false },
  'read-audit': { verb: 'read the override audit trail', needs: 'a viewer or operator key', changes: false },
  'set-override': { verb: 'set overrides', needs: 'an operator key', changes: true },
  'remove-override': { verb: 'remove overrides', needs: 'an operator key', changes: true },
  'read-analytics': { verb: 'read revenue analytics', needs: 'a viewer or operator key', changes: false },
};

/** A sentence a user understands for a failed action. */
export function describeError(err: unknown, action: Action, hadKey: boolean): string {
  const a = actions[action];
  if (!(err instanceof ApiError)) return `Something went wrong in the dashboard (${String(err)}). Reload the page and try again.`;
  const server = err.serverMessage;
  switch (err.status) {
    case NETWORK_ERROR:
      return 'Could not reach the dynaprice server: check the network connection' +
        (a.changes ? ', then reload the product to see whether the change was made.' : ' and try again.');
    case TIMEOUT:
      return 'The server did not answer in time' +
        (a.changes ? '; the change may or may not have been made. Check the product before trying again.' : '. Try again.');
    case BAD_RESPONSE:
      return 'The server sent an answer the dashboard could not read. Reload the page and try again.';
    case 400:
      return `The server did not accept this${server ? `: ${server}` : ''}.`;
    case 401:
      return hadKey
        ? 'The key was not accepted. Check it and enter it again.'
        : `This needs a key: enter ${a.needs} above.`;
    case 403:
      return `This key may not ${a.verb}; that needs ${a.needs}.`;
    case 404:
      if (/no override/.test(server)) return 'There is no active override to remove: it may have expired or been removed by someone else.';
      if (/unknown product/.test(server)) return 'The server does not know this product (any more).';
      return `Not found${server ? `: ${server}` : ''}.`;
    case 413:
      return 'The request is too large for the server.';
    case 429:
      return 'Too many requests: wait a moment and try again.';
    case 503:
      return 'The server is busy or restarting' + (a.changes ? ' and nothing was changed' : '') + '. Try again in a moment.';
  }
  if (err.status >= 500) return `The server failed (error ${err.status}). Try again; if it keeps failing, check the server's log.`;
  return `Unexpected answer from the server (HTTP ${err.status}${server ? `: ${server}` : ''}).`;
}
