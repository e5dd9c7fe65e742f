import { readFileSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { eventually, INGEST_KEY, openDashboard, startServer, useKey, VIEWER_KEY, type Server } from './harness';

// The analytics view against a real `serve --demo`: its shoppers fill the
// analytics within seconds, in the catalog's currency.
describe('revenue analytics', () => {
  let server: Server;
  let browser: Browser;
  let page: Page;
  let problems: string[];

  beforeAll(async () => {
    server = await startServer(inject('bin'), ['--demo', '--demo-rate', '300']);
    ({ browser, page, problems } = await openDashboard(`${server.url}/#analytics`, inject('chromium')));
  });

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('asks for a key first, and shows the currency of the prices', async () => {
    expect(await page.isVisible('#analytics')).toBe(true);
    expect(await page.isVisible('#grid')).toBe(false);
    expect(await page.getAttribute('#view-analytics', 'aria-pressed')).toBe('true');
    await eventually(() => page.textContent('#an-msg'), 'Enter a viewer or operator key above to see revenue analytics.');
    await eventually(() => page.textContent('#currency'), 'in EUR');
  });

  it('shows revenue, a chart and the products with the most of it', async () => {
    expect(await useKey(page, VIEWER_KEY)).toBe('Key accepted for this tab.');
    await eventually(async () => /^€[\d,]+\.\d\d$/.test((await page.textContent('#an-revenue')) ?? ''), true);
    await eventually(() => page.locator('#an-chart canvas').count(), 1);
    expect(await page.getAttribute('#an-chart', 'aria-label')).toMatch(/^Revenue by hour: \d+ hours with shoppers, €/);
    await eventually(async () => (await page.locator('#an-rows tr').count()) >= 5, true);
    // Product rows carry the names the viewer key reads, and are ranked by revenue.
    const first = await page.locator('#an-rows tr').first().locator('th').textContent();
    expect(first).toMatch(/^P[A-J](Wireless Headphones|Smart Watch|Bluetooth Speaker|Tablet|Mechanical Keyboard|Gaming Mouse|Smartphone|Fitness Tracker|Portable Monitor|Webcam)$/);
    const revenue = await page.locator('#an-rows tr td:nth-child(2)').allTextContents();
    const values = revenue.map((v) => Number(v.replace(/[€,]/g, '')));
    expect(values).toEqual([...values].sort((a, b) => b - a));
    expect(await page.textContent('#an-conversion')).toMatch(/^\d+\.\d\d%$/);
    expect(await page.textContent('#an-index')).toMatch(/^€[\d,.]+ vs €[\d,.]+ list \(\d+\.\d%\)$/);
  });

  it('groups by strategy: the demo prices with thompson, decay and seed', async () => {
    await page.selectOption('#an-by', 'strategy');
    await eventually(async () => (await page.locator('#an-rows tr th').allTextContents()).sort(), ['decay', 'seed', 'thompson']);
    expect(await page.textContent('#an-key-head')).toBe('Strategy');
  });

  it('downloads the table as CSV', async () => {
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#an-csv')]);
    expect(download.suggestedFilename()).toBe('analytics-by-strategy.csv');
    const lines = readFileSync((await download.path())!, 'utf8').trim().split('\n');
    expect(lines[0]).toBe('strategy,views,carts,purchases,units,conversion,revenue,cost,margin,margin_pct,avg_price,avg_list_price,price_index,currency');
    expect(lines.slice(1).map((l) => l.split(',')[0]).sort()).toEqual(['decay', 'seed', 'thompson']);
    expect(lines[1]!.endsWith(',EUR')).toBe(true);
  });

  it('says why when the key may not read analytics, and goes back to prices', async () => {
    expect(await useKey(page, INGEST_KEY)).toMatch(/may not/);
    await page.click('#an-refresh');
    await eventually(async () => ((await page.textContent('#an-msg')) ?? '').includes('read revenue analytics'), true);
    await page.click('#view-prices');
    expect(await page.isVisible('#grid')).toBe(true);
    expect(await page.isVisible('#analytics')).toBe(false);
    expect(problems).toEqual([]);
  });
});
