import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { cell, eventually, OPERATOR_KEY, openDashboard, openPage, openProduct, postEvents, startServer, useKey, VIEWER_KEY, type Server } from './harness';

// One server and one page for the whole file: the scenarios follow each
// other as an analyst's session would, and each builds on the state the
// previous one left (PA moves from 299 to 314, then gets an override).
describe('dashboard against a real dynaprice serve', () => {
  let server: Server;
  let browser: Browser;
  let page: Page;
  let problems: string[];

  beforeAll(async () => {
    server = await startServer(inject('bin'));
    ({ browser, page, problems } = await openDashboard(server.url, inject('chromium')));
  });

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('fills the table with the catalog and goes live', async () => {
    await eventually(() => page.locator('#viewport .row:not([hidden])').count(), 10);
    const ids = await page.locator('#viewport .row:not([hidden])').evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset.id));
    expect(ids.sort()).toEqual(['PA', 'PB', 'PC', 'PD', 'PE', 'PF', 'PG', 'PH', 'PI', 'PJ']);
    expect(await cell(page, 'PA', 'price')).toBe('299.00');
    expect(await cell(page, 'PA', 'source')).toBe('base');
    expect(await cell(page, 'PA', 'low')).toBe('299.00');
    expect(await page.textContent('#count')).toBe('10 products');
    await eventually(() => page.getAttribute('#conn', 'data-state'), 'live');
    expect(await page.textContent('#conn')).toBe('Live');
  });

  it('moves a price live when an event is posted', async () => {
    const now = Math.floor(Date.now() / 1000);
    await postEvents(server.url, ['view', 'cart', 'purchase'].map((event_type) => (
      { event_type, product_id: 'PA', user_id: 'U1', timestamp: now, price: 299 })));
    await eventually(() => cell(page, 'PA', 'price'), '314.00');
    expect(await cell(page, 'PA', 'source')).toBe('dynamic');
    expect(await cell(page, 'PA', 'demand')).toBe('9');
    // One commit, one update: 299 → 314.
    expect(await page.getAttribute('#row-PA .c-change', 'data-dir')).toBe('up');
    expect(await cell(page, 'PA', 'change')).toBe('▲+15.00 (+5.0%)');
    expect(await page.locator('#row-PA .spark polyline').getAttribute('points')).toMatch(/\d+,\d+.* \d+,\d+/);
  });

  it('searches and sorts', async () => {
    await page.fill('#search', 'pc');
    await eventually(() => page.locator('#viewport .row:not([hidden])').count(), 1);
    expect(await page.textContent('#count')).toBe('Showing 1 of 10 products');
    await page.fill('#search', '');
    await page.click('[data-sort=price]');
    expect(await page.getAttribute('.head [role=columnheader]:has([data-sort=price])', 'aria-sort')).toBe('descending');
    await eventually(() => page.locator('#viewport .row:not([hidden])').evaluateAll((rows) =>
      rows.map((r) => [(r as HTMLElement).dataset.id, r.getBoundingClientRect().top] as const)
        .sort((a, b) => a[1] - b[1]).map((x) => x[0]).slice(0, 3)), ['PG', 'PD', 'PI']);
    await page.click('[data-sort=id]');
  });

  it('explains a wrong key in words', async () => {
    expect(await useKey(page, 'not-a-key')).toBe('The key was not accepted. Check it and enter it again.');
    await openProduct(page, 'PB');
    await eventually(() => page.textContent('#chart-msg'), 'The key was not accepted. Check it and enter it again.');
    await page.fill('#ov-price', '300');
    await page.fill('#ov-reason', 'test');
    await page.click('#ov-submit');
    await eventually(() => page.textContent('#override-msg'), 'The key was not accepted. Check it and enter it again.');
    expect(await page.getAttribute('#override-msg', 'class')).toContain('error');
    // A viewer key reads but may not change prices.
    expect(await useKey(page, VIEWER_KEY)).toBe('Key accepted for this tab.');
    await page.fill('#ov-price', '300');
    await page.fill('#ov-reason', 'test');
    await page.click('#ov-submit');
    await eventually(() => page.textContent('#override-msg'), 'This key may not set overrides; that needs an operator key.');
    // Form checks come before the server is asked.
    await page.fill('#ov-price', '-3');
    await page.click('#ov-submit');
    await eventually(() => page.textContent('#ov-price-err'), 'Enter a price greater than 0.');
    expect(await cell(page, 'PB', 'source')).toBe('base');
  });

  it('keeps the key out of the URL and off the device unless asked', async () => {
    expect(page.url()).not.toContain(VIEWER_KEY);
    const stored = () => page.evaluate(() => [sessionStorage.getItem('dynaprice.apiKey'), localStorage.getItem('dynaprice.apiKey')]);
    expect(await stored()).toEqual([VIEWER_KEY, null]);
    expect(await useKey(page, OPERATOR_KEY, true)).toBe('Key accepted and remembered on this device.');
    expect(await stored()).toEqual([OPERATOR_KEY, OPERATOR_KEY]);
    await page.click('#key-forget');
    expect(await stored()).toEqual([null, null]);
    expect(await useKey(page, OPERATOR_KEY)).toBe('Key accepted for this tab.');
    expect(await stored()).toEqual([OPERATOR_KEY, null]);
    expect(page.url()).toBe(`${server.url}/`);
  });

  it('draws the history chart', async () => {
    await openProduct(page, 'PA');
    await eventually(() => page.locator('#chart canvas').count(), 1);
    const size = await page.locator('#chart canvas').evaluate((c) => [(c as HTMLCanvasElement).width, (c as HTMLCanvasElement).height]);
    expect(size[0]).toBeGreaterThan(100);
    expect(size[1]).toBeGreaterThan(100);
    expect(await page.textContent('#chart-msg')).toBe('');
    // The explanation is there too.
    await eventually(async () => (await page.textContent('#explain')) ?? '', expect.stringContaining('Strategyseed'));
    expect(await page.textContent('#explain')).toContain('Strategy price314.00');
    // Zooming keeps the canvas.
    await page.click('#zoom-in');
    await page.click('#zoom-reset');
    expect(await page.locator('#chart canvas').count()).toBe(1);
  });

  it('sets an override through the UI and removes it again', async () => {
    await page.fill('#ov-price', '279.99');
    await page.fill('#ov-reason', 'e2e weekend promo');
    await page.selectOption('#ov-expiry', '3600');
    await page.click('#ov-submit');
    await eventually(() => page.textContent('#override-msg'), 'Override set: PA is now 279.99.');
    await eventually(() => cell(page, 'PA', 'source'), 'override');
    expect(await cell(page, 'PA', 'price')).toBe('279.99');
    expect(await page.getAttribute('#row-PA .badge', 'class')).toContain('badge-override');
    await eventually(() => page.textContent('#d-source'), 'override');
    await eventually(async () => (await page.textContent('#audit')) ?? '', expect.stringContaining('e2e weekend promo'));
    await eventually(async () => (await page.textContent('#override-active')) ?? '', expect.stringContaining('by ops'));
    expect(await page.isVisible('#ov-remove')).toBe(true);

    await page.click('#ov-remove');
    await eventually(() => page.textContent('#override-msg'), 'Override on PA removed.');
    await eventually(() => cell(page, 'PA', 'price'), '314.00');
    expect(await cell(page, 'PA', 'source')).toBe('dynamic');
    await eventually(async () => (await page.textContent('#audit')) ?? '', expect.stringContaining('removed by ops'));
    expect(await page.isVisible('#ov-remove')).toBe(false);
  });

  it('is usable from the keyboard', async () => {
    await page.keyboard.press('Escape');
    await eventually(() => page.isVisible('#detail'), false);
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('grid');
    await page.keyboard.press('Home');
    await page.keyboard.press('ArrowDown');
    await eventually(() => page.getAttribute('#grid', 'aria-activedescendant'), 'row-PB');
    await page.keyboard.press('Enter');
    await eventually(() => page.textContent('#detail-title'), 'PB');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('detail-title');
    await page.keyboard.press('Escape');
  });

  it('fits a phone, in dark mode too', async () => {
    const { page: phone, problems: phoneProblems } = await openPage(browser, server.url, {
      page: { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, colorScheme: 'dark' },
    });
    await eventually(() => phone.locator('#viewport .row:not([hidden])').count(), 10);
    expect(await phone.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
    expect(await phone.evaluate(() => getComputedStyle(document.documentElement).backgroundColor)).toBe('rgb(15, 18, 22)');
    expect(await page.evaluate(() => getComputedStyle(document.documentElement).backgroundColor)).toBe('rgb(255, 255, 255)');
    // Columns that do not fit are left out; price, change and source stay.
    expect(await phone.isVisible('#row-PA .c-price')).toBe(true);
    expect(await phone.isVisible('#row-PA .c-source')).toBe(true);
    expect(await phone.isVisible('#row-PA .c-demand')).toBe(false);
    // The panel covers the table, which goes inert until it closes.
    await phone.click('#row-PA');
    await eventually(() => phone.isVisible('#detail'), true);
    const box = await phone.locator('#detail').boundingBox();
    expect(box?.width).toBe(390);
    expect(await phone.evaluate(() => document.querySelector('main')!.inert)).toBe(true);
    await phone.click('#detail-close');
    expect(await phone.evaluate(() => document.querySelector('main')!.inert)).toBe(false);
    await phone.close();
    expect(phoneProblems).toEqual([]);
  });

  it('logged no errors', () => {
    expect(problems).toEqual([]);
  });
});
