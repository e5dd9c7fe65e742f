// Refreshes docs/screenshots/ (npm run screenshots): the main views against a
// real server with demo traffic. Not part of the test suite: the pictures
// change with every run.
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContextOptions, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { api, ADMIN_KEY, eventually, launchBrowser, openPage, openProduct, OPERATOR_KEY, postEvents, startServer, useKey, type Server } from './harness';

const out = fileURLToPath(new URL('../../docs/screenshots/', import.meta.url));
const desktop: BrowserContextOptions = { viewport: { width: 1400, height: 860 } };
const phone: BrowserContextOptions = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 };

let server: Server;
let browser: Browser;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  mkdirSync(out, { recursive: true });
  server = await startServer(inject('bin'), ['--demo', '--demo-rate', '25']);
  browser = await launchBrowser(inject('chromium'));
  // Some history for PA: demand, an override period, more demand.
  const ev = (n: number) => Array.from({ length: n }, (_, i) => ({ event_type: i % 3 ? 'view' : 'cart', product_id: 'PA', user_id: `U${i}`, timestamp: 0, price: 299 }));
  for (let i = 0; i < 6; i++) {
    await postEvents(server.url, ev(4));
    await sleep(700);
  }
  await api(server.url, 'POST', '/override', ADMIN_KEY, { product_id: 'PA', override_price: 305, reason: 'flash sale' });
  await sleep(3000);
  await api(server.url, 'DELETE', '/override/PA', ADMIN_KEY);
  for (let i = 0; i < 6; i++) {
    await postEvents(server.url, ev(3));
    await sleep(700);
  }
  await api(server.url, 'POST', '/override', ADMIN_KEY, { product_id: 'PG', override_price: 599, reason: 'clearance', ttl_seconds: 86400 });
  // A product priced by Thompson sampling, with stock, competitor quotes
  // and a margin floor, for the explanation: 300 shoppers who buy less
  // often the dearer it gets.
  await api(server.url, 'PUT', '/products/PX', ADMIN_KEY, { name: 'Trail Backpack', base_price: 120, strategy: 'thompson', unit_cost: 70, min_margin_pct: 15 });
  await postEvents(server.url, [
    { event_type: 'stock', product_id: 'PX', quantity: 500 },
    { event_type: 'competitor_price', product_id: 'PX', competitor: 'outdoor-shop', price: 129 },
    { event_type: 'competitor_price', product_id: 'PX', competitor: 'mega-mart', price: 114.5 },
  ]);
  let seed = 7;
  const uniform = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  for (let i = 0; i < 300; i++) {
    const p = ((await api(server.url, 'GET', '/price/PX', '')) as { price: number }).price;
    const bought = uniform() < 0.5 / (1 + Math.exp((p - 110) / 18));
    await postEvents(server.url, [
      { event_type: 'view', product_id: 'PX', user_id: `U${i}`, price: p },
      ...(bought ? [{ event_type: 'purchase', product_id: 'PX', user_id: `U${i}`, price: p }] : []),
    ]);
  }
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

async function open(opts: BrowserContextOptions & { colorScheme?: 'light' | 'dark' }): Promise<Page> {
  const { page } = await openPage(browser, server.url, { page: opts });
  await eventually(() => page.getAttribute('#conn', 'data-state'), 'live');
  await sleep(4000); // let sparklines and "change" fill in from live updates
  return page;
}

async function openPA(page: Page): Promise<void> {
  await openProduct(page, 'PA');
  await eventually(() => page.locator('#chart canvas').count(), 1);
  await eventually(() => page.textContent('#audit-msg'), '');
  await sleep(500);
}

it('takes the screenshots', async () => {
  const page = await open({ ...desktop, colorScheme: 'light' });
  expect(await useKey(page, OPERATOR_KEY)).toBe('Key accepted for this tab.');
  await page.screenshot({ path: `${out}table.png` });
  await openPA(page);
  await page.screenshot({ path: `${out}detail.png` });
  await page.fill('#ov-price', '289.99');
  await page.fill('#ov-reason', 'weekend promo');
  await page.selectOption('#ov-expiry', '86400');
  await page.click('#ov-submit');
  await eventually(() => page.textContent('#override-msg'), 'Override set: PA is now 289.99.');
  await eventually(async () => (await page.textContent('#override-active'))?.startsWith('Active'), true);
  await sleep(500);
  await page.screenshot({ path: `${out}override.png` });

  await openProduct(page, 'PX');
  await eventually(async () => ((await page.textContent('#explain')) ?? '').includes('Learning (thompson)'), true);
  await page.locator('#explain').locator('..').screenshot({ path: `${out}explain.png` });

  // Revenue analytics of the demo's shoppers (a few minutes of them).
  await page.click('#view-analytics');
  await eventually(async () => (await page.locator('#an-rows tr').count()) >= 5, true);
  await eventually(() => page.locator('#an-chart canvas').count(), 1);
  await sleep(500);
  await page.screenshot({ path: `${out}analytics.png` });

  const dark = await open({ ...desktop, colorScheme: 'dark' });
  expect(await useKey(dark, OPERATOR_KEY)).toBe('Key accepted for this tab.');
  await openPA(dark);
  await dark.screenshot({ path: `${out}dark.png` });

  const mobile = await open({ ...phone, colorScheme: 'light' });
  await mobile.screenshot({ path: `${out}phone.png` });
  expect(await useKey(mobile, OPERATOR_KEY)).toBe('Key accepted for this tab.');
  await openPA(mobile);
  await mobile.screenshot({ path: `${out}phone-detail.png` });
}, 120_000);
