import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { cell, eventually, openDashboard, postEvents, startServer, type Server } from './harness';

// The connection badge never lies: it leaves "Live" as soon as the server
// goes away, counts down to the next attempt, and is live again (with fresh
// prices) once the server is back.
describe('connection badge across a server restart', () => {
  let server: Server;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    server = await startServer(inject('bin'));
    ({ browser, page } = await openDashboard(server.url, inject('chromium'), { page: {} }));
  });

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('reconnects with backoff and catches up', async () => {
    await eventually(() => page.getAttribute('#conn', 'data-state'), 'live');
    const addr = new URL(server.url).host;
    await server.kill();
    await eventually(() => page.getAttribute('#conn', 'data-state'), 'reconnecting');
    expect(await page.textContent('#conn')).toMatch(/^Reconnecting( in \d+ s|…)$/);
    expect(await page.isVisible('#conn-retry')).toBe(true);

    // While it is down, prices change on disk: a new server on the same data.
    server = await startServer(inject('bin'), [], { addr, data: server.data });
    await postEvents(server.url, [{ event_type: 'purchase', product_id: 'PC', user_id: 'U9', timestamp: 0, price: 129 }]);
    await eventually(() => page.getAttribute('#conn', 'data-state'), 'live', 30_000);
    expect(await page.textContent('#conn')).toBe('Live');
    expect(await page.isVisible('#conn-retry')).toBe(false);
    // The snapshot after reconnecting brought the change made while away: 129 + sqrt(5)·5.
    await eventually(() => cell(page, 'PC', 'price'), '140.18');
    // And live updates flow again.
    await postEvents(server.url, [{ event_type: 'purchase', product_id: 'PD', user_id: 'U9', timestamp: 0, price: 499 }]);
    await eventually(() => cell(page, 'PD', 'price'), '510.18');
  });
});
