import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ADMIN_KEY, api, eventually, openDashboard, openProduct, postEvents, startServer, useKey, VIEWER_KEY, type Server } from './harness';

// "Why this price" with market signals and learning, from a real server:
// PS priced by its stock (inventory) with competitor quotes and a ceiling,
// PC against a competitor and held up by its margin floor, PT by Thompson
// sampling.
describe('the explanation of market signals and learning', () => {
  let server: Server;
  let browser: Browser;
  let page: Page;
  let problems: string[];

  beforeAll(async () => {
    server = await startServer(inject('bin'));
    const day = 86_400_000;
    const plan = { period_start: new Date(Date.now() - 10 * day).toISOString(), period_end: new Date(Date.now() + 10 * day).toISOString() };
    await api(server.url, 'PUT', '/products/PS', ADMIN_KEY, {
      name: 'Festival Tent', base_price: 40, strategy: 'inventory', ceiling: 90, inventory: plan,
    });
    await api(server.url, 'PUT', '/products/PC', ADMIN_KEY, {
      name: 'Camp Chair', base_price: 40, strategy: 'competitor', unit_cost: 25, min_margin_pct: 20, competitor: { mode: 'match' },
    });
    await api(server.url, 'PUT', '/products/PT', ADMIN_KEY, { name: 'Thermos', base_price: 20, strategy: 'thompson' });
    await postEvents(server.url, [
      { event_type: 'stock', product_id: 'PS', quantity: 100 },
      { event_type: 'competitor_price', product_id: 'PS', competitor: 'shop-b', price: 44.9 },
      { event_type: 'competitor_price', product_id: 'PS', competitor: 'shop-c', price: 47 },
      { event_type: 'purchase', product_id: 'PS', quantity: 60 },
      { event_type: 'competitor_price', product_id: 'PC', competitor: 'shop-b', price: 20 },
      ...Array.from({ length: 6 }, () => ({ event_type: 'view', product_id: 'PT', user_id: 'U1' })),
      { event_type: 'purchase', product_id: 'PT', user_id: 'U1' },
    ]);
    ({ browser, page, problems } = await openDashboard(server.url, inject('chromium')));
    expect(await useKey(page, VIEWER_KEY)).toBe('Key accepted for this tab.');
  });

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  /** Opens a product and returns its explanation once it names the strategy. */
  async function explain(id: string, strategy: string): Promise<string> {
    await openProduct(page, id);
    await eventually(async () => (await page.textContent('#explain')) ?? '', expect.stringContaining(`Strategy${strategy}`));
    return (await page.textContent('#explain')) ?? '';
  }

  it('shows stock, selling plan and competitors', async () => {
    const text = await explain('PS', 'inventory');
    expect(text).toContain('Stock: 40 on hand');
    // The plan runs from when the stock became known (half way through the
    // period): 100 to sell by its end, 60 sold at once: far ahead, ×2.50.
    expect(text).toMatch(/Selling plan: 40 left to sell by .+, against 100 on plan → ahead of plan \(selling faster than planned\), base price ×2\.50/);
    expect(text).toMatch(/Competitors: shop-b 44\.90 \((just now|\d+ s ago), lowest\); shop-c 47\.00 \((just now|\d+ s ago)\)/);
    expect(text).toContain('Ceiling: 100.00 → 90.00 (never above 90)');
  });

  it('shows the competitor positioned against and the margin floor', async () => {
    const text = await explain('PC', 'competitor');
    expect(text).toMatch(/Competitors: shop-b 20\.00 \((just now|\d+ s ago), lowest, positioned against\)/);
    expect(text).toContain('Margin floor: 20.00 → 30.00 (never below unit cost 25 plus 20% margin)');
  });

  it('shows what Thompson sampling learned as a table', async () => {
    await explain('PT', 'thompson');
    // Each view may show another price, so how many prices were tried depends
    // on the draws; a purchase where the price had no view yet counts as one.
    const caption = page.locator('#explain table.learning caption');
    const summary = /^Learning \(thompson\): \d+ of 22 prices tried, ([67]) views and 1 purchase in all\.$/;
    await eventually(async () => summary.test((await caption.textContent()) ?? ''), true);
    const views = Number(summary.exec((await caption.textContent()) ?? '')![1]);
    expect(await page.locator('#explain table.learning thead th').allTextContents()).toEqual(['Price', 'Views', 'Purchases', 'Conversion']);
    const rows = await page.locator('#explain table.learning tbody tr').evaluateAll((trs) => trs.map((tr) => ({
      shown: tr.classList.contains('shown'),
      head: tr.querySelector('th[scope=row]')?.textContent ?? null,
      cells: [...tr.children].map((c) => c.textContent ?? ''),
    })));
    // The caption says none was left out, so the rows hold every view.
    expect(rows.reduce((n, r) => n + Number(r.cells[1]), 0)).toBe(views);
    // Exactly one row is the price shown now: marked, and saying so in its row header.
    expect(rows.filter((r) => r.shown || r.cells[0]!.endsWith(' (shown now)')).map((r) => [r.shown, r.head]))
      .toEqual([[true, expect.stringMatching(/^\d+\.\d{2} \(shown now\)$/)]]);
  });

  it('logged no errors', () => {
    expect(problems).toEqual([]);
  });
});
