import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContextOptions, type Page } from 'playwright-core';
import { expect } from 'vitest';

export const ADMIN_KEY = 'e2e-admin-key-0123456789';
export const VIEWER_KEY = 'e2e-viewer-key-0123456789';
export const OPERATOR_KEY = 'e2e-operator-key-0123456789';
export const INGEST_KEY = 'e2e-ingest-key-0123456789';

export interface Server {
  url: string;
  /** The data directory (kept by restart, removed by stop). */
  data: string;
  /** Stops the process, keeping the data directory. */
  kill(): Promise<void>;
  /** Stops the process and removes its data. */
  stop(): Promise<void>;
  /** The last lines the server wrote, for failure messages. */
  output(): string;
}

/**
 * Starts `dynaprice serve` on a free port (or addr) with a fresh data
 * directory (or data), and resolves once it prints its address.
 */
export async function startServer(bin: string, args: string[] = [], opts: { addr?: string; data?: string } = {}): Promise<Server> {
  const data = opts.data ?? mkdtempSync(join(tmpdir(), 'dynaprice-e2e-data-'));
  const child = spawn(bin, ['serve', '--addr', opts.addr ?? '127.0.0.1:0', '--data', data, '--sync', 'normal', ...args], {
    env: {
      ...process.env,
      ADMIN_API_KEY: ADMIN_KEY,
      DYNAPRICE_API_KEYS: `viewer:viewer:${VIEWER_KEY},ops:operator:${OPERATOR_KEY},feed:ingest:${INGEST_KEY}`,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const output = () => lines.slice(-40).join('\n');
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`dynaprice did not start in 20 s:\n${output()}`)), 20_000);
    const read = (chunk: Buffer) => {
      for (const l of chunk.toString().split('\n')) {
        if (l) lines.push(l);
        const m = /serving on (http:\/\/\S+)/.exec(l);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      }
    };
    child.stdout!.on('data', read);
    child.stderr!.on('data', read);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`dynaprice exited with ${code}:\n${output()}`));
    });
  });
  const kill = () => terminate(child);
  return { url, data, kill, output, stop: async () => {
    await kill();
    rmSync(data, { recursive: true, force: true });
  } };
}

function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const hard = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(hard);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

export function launchBrowser(executablePath: string): Promise<Browser> {
  return chromium.launch({
    executablePath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/**
 * Records what must never happen on a page: uncaught errors, console errors
 * (Content-Security-Policy violations among them) and failed requests other
 * than the ones a test provokes on purpose.
 */
export function watch(page: Page): string[] {
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    // A rejected key or override is an expected 4xx answer, which Chromium logs.
    if (m.type() === 'error' && !/status of 40[0134]/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  return problems;
}

export interface Opened {
  page: Page;
  /** What watch(page) records. */
  problems: string[];
}

export interface OpenOptions {
  /** The page's options; a 1400×900 viewport unless given. */
  page?: BrowserContextOptions;
  /** Runs on the new page before it loads the dashboard, e.g. to listen to its websocket. */
  beforeGoto?: (page: Page) => void;
}

/** Opens the dashboard at url in a new page of browser, watched from the start. */
export async function openPage(browser: Browser, url: string, opts: OpenOptions = {}): Promise<Opened> {
  const page = await browser.newPage(opts.page ?? { viewport: { width: 1400, height: 900 } });
  const problems = watch(page);
  opts.beforeGoto?.(page);
  await page.goto(url);
  return { page, problems };
}

/** Launches Chromium (executablePath) and opens the dashboard at url in it (openPage). */
export async function openDashboard(url: string, executablePath: string, opts: OpenOptions = {}): Promise<Opened & { browser: Browser }> {
  const browser = await launchBrowser(executablePath);
  try {
    return { browser, ...(await openPage(browser, url, opts)) };
  } catch (e) {
    await browser.close();
    throw e;
  }
}

/** Enters key in the key form (remembered on the device if asked) and returns what the page says of it. */
export async function useKey(page: Page, key: string, remember = false): Promise<string> {
  await page.fill('#key-input', key);
  await page.setChecked('#key-remember', remember);
  await page.click('#key-form button[type=submit]');
  // Not expect.poll, which only works inside a test: beforeAll enters keys too.
  const status = page.locator('#key-status', { hasNotText: 'Checking' });
  await status.waitFor({ state: 'attached', timeout: 10_000 });
  return (await status.textContent()) ?? '';
}

/** Clicks a product's row and waits for its detail panel. */
export async function openProduct(page: Page, id: string): Promise<void> {
  await page.click(`#row-${id}`);
  await eventually(() => page.isVisible('#detail'), true);
  await eventually(() => page.textContent('#detail-title'), id);
}

export async function postEvents(base: string, events: object[]): Promise<void> {
  const r = await fetch(`${base}/events`, {
    method: 'POST', headers: { 'X-API-Key': INGEST_KEY, 'Content-Type': 'application/json' }, body: JSON.stringify(events),
  });
  const body = (await r.json()) as { accepted: number };
  if (r.status !== 202 || body.accepted !== events.length) throw new Error(`POST /events: ${r.status} ${JSON.stringify(body)}`);
}

export async function api(base: string, method: string, path: string, key: string, body?: object): Promise<unknown> {
  const r = await fetch(`${base}${path}`, {
    method, headers: { 'X-API-Key': key, 'Content-Type': 'application/json' }, body: body ? JSON.stringify(body) : null,
  });
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`);
  return r.json();
}

/** Polls f until it returns want (10 s). */
export function eventually<T>(f: () => Promise<T> | T, want: T, timeout = 10_000): Promise<void> {
  return expect.poll(f, { timeout, interval: 100 }).toEqual(want);
}

/** The text of a row's cell, e.g. cell(page, 'PA', 'price'). */
export async function cell(page: Page, id: string, col: string): Promise<string> {
  const loc = page.locator(`#row-${id} .c-${col}`);
  return (await loc.count()) ? ((await loc.textContent()) ?? '').trim() : '';
}
