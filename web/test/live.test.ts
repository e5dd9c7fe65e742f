import { beforeEach, describe, expect, it } from 'vitest';
import { CONNECT_TIMEOUT_MS, LiveFeed, QUIET_MS, feedURL, type FeedEnv, type FeedState, type SocketLike } from '../src/live';
import type { Tick } from '../src/types';

class FakeSocket implements SocketLike {
  onopen: ((ev: Event) => void) | null = null;
  onmessage: ((ev: MessageEvent) => void) | null = null;
  onclose: ((ev: CloseEvent) => void) | null = null;
  closed = false;
  constructor(readonly url: string) {}
  close(): void {
    this.closed = true;
  }
  open(): void {
    this.onopen?.(new Event('open'));
  }
  send(data: unknown): void {
    this.onmessage?.({ data: typeof data === 'string' ? data : JSON.stringify(data) } as MessageEvent);
  }
  drop(): void {
    this.onclose?.({} as CloseEvent);
  }
}

/** A fake clock, timers, sockets and network. */
class Env implements FeedEnv {
  t = 0;
  sockets: FakeSocket[] = [];
  timers = new Map<number, { at: number; fn: () => void }>();
  nextId = 1;
  isOnline = true;
  serverUp = true;
  rand = 0.5;
  open = (url: string) => {
    const s = new FakeSocket(url);
    this.sockets.push(s);
    return s;
  };
  setTimeout = (fn: () => void, ms: number) => {
    this.timers.set(this.nextId, { at: this.t + ms, fn });
    return this.nextId++;
  };
  clearTimeout = (id: number) => {
    this.timers.delete(id);
  };
  now = () => this.t;
  random = () => this.rand;
  probe = () => Promise.resolve(this.serverUp);
  online = () => this.isOnline;
  get socket(): FakeSocket {
    return this.sockets[this.sockets.length - 1]!;
  }
  /** Advances the clock by ms, running due timers in order. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      const due = [...this.timers.entries()].filter(([, x]) => x.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.t = due[1].at;
      due[1].fn();
      await Promise.resolve();
      await Promise.resolve();
    }
    this.t = end;
  }
}

const update = (version: number) => ({
  type: 'price_update', product_id: 'PA', new_price: 299 + version, timestamp: 1, price_source: 'dynamic', demand: version, version, lowest_30d: 299,
});

describe('LiveFeed', () => {
  let env: Env;
  let states: FeedState[];
  let ticks: Tick[];
  let sessions: number;
  let feed: LiveFeed;

  beforeEach(() => {
    env = new Env();
    states = [];
    ticks = [];
    sessions = 0;
    feed = new LiveFeed('ws://h/ws/prices?snapshot=1', {
      onSession: () => sessions++,
      onTick: (t) => ticks.push(t),
      onState: (s) => states.push(s),
    }, env);
  });

  const kinds = () => states.map((s) => s.kind);

  it('is connecting until the socket opens, then live', () => {
    feed.start();
    expect(kinds()).toEqual(['connecting']);
    expect(env.socket.url).toBe('ws://h/ws/prices?snapshot=1');
    env.socket.open();
    expect(kinds()).toEqual(['connecting', 'live']);
    expect(sessions).toBe(1);
  });

  it('passes price updates on and ignores anything else', () => {
    feed.start();
    env.socket.open();
    env.socket.send(update(2));
    env.socket.send('not json');
    env.socket.send({ type: 'hello' });
    env.socket.send(update(3));
    expect(ticks.map((t) => t.version)).toEqual([2, 3]);
  });

  it('reconnects with growing, jittered delays and says so', async () => {
    feed.start();
    const delays: number[] = [];
    for (let i = 0; i < 4; i++) {
      env.socket.drop();
      const s = states[states.length - 1]!;
      expect(s.kind).toBe('reconnecting');
      if (s.kind !== 'reconnecting') return;
      expect(s.attempt).toBe(i + 1);
      delays.push(s.retryAt - env.t);
      await env.advance(s.retryAt - env.t);
      expect(states[states.length - 1]!.kind).toBe('connecting');
    }
    expect(delays).toEqual([750, 1500, 3000, 6000]); // random() = 0.5: three quarters of 1, 2, 4, 8 s
    expect(env.sockets).toHaveLength(5);
    expect(env.sockets.slice(0, 4).every((s) => s.closed)).toBe(true);
  });

  it('starts the backoff afresh once data flows', async () => {
    feed.start();
    env.socket.drop();
    await env.advance(1000);
    env.socket.drop();
    await env.advance(2000);
    env.socket.open();
    env.socket.send(update(1));
    env.socket.drop();
    const s = states[states.length - 1]!;
    expect(s).toEqual({ kind: 'reconnecting', attempt: 1, retryAt: env.t + 750 });
  });

  it('gives up on a socket that does not open', async () => {
    feed.start();
    await env.advance(CONNECT_TIMEOUT_MS);
    expect(env.sockets[0]!.closed).toBe(true);
    expect(kinds()).toEqual(['connecting', 'reconnecting']);
  });

  it('ignores a replaced socket', async () => {
    feed.start();
    const old = env.socket;
    old.drop();
    await env.advance(1000);
    old.onmessage?.({ data: JSON.stringify(update(5)) } as MessageEvent);
    expect(ticks).toEqual([]);
    expect(old.onmessage).toBeNull();
  });

  it('goes offline with the browser and back when asked', () => {
    feed.start();
    env.socket.open();
    feed.wentOffline();
    expect(states[states.length - 1]).toEqual({ kind: 'offline' });
    expect(env.socket.closed).toBe(true);
    feed.retryNow();
    expect(states[states.length - 1]).toEqual({ kind: 'connecting' });
    expect(env.sockets).toHaveLength(2);
  });

  it('waits for the network instead of retrying blindly', () => {
    feed.start();
    env.isOnline = false;
    env.socket.drop();
    expect(states[states.length - 1]).toEqual({ kind: 'offline' });
    expect(env.timers.size).toBe(0);
  });

  it('retries at once on request, but not while live', async () => {
    feed.start();
    env.socket.open();
    feed.retryNow();
    expect(env.sockets).toHaveLength(1);
    env.socket.drop();
    feed.retryNow();
    expect(env.sockets).toHaveLength(2);
    expect(states[states.length - 1]).toEqual({ kind: 'connecting' });
  });

  it('drops a quiet socket when the server does not answer either', async () => {
    feed.start();
    env.socket.open();
    await env.advance(QUIET_MS * 2);
    expect(states[states.length - 1]!.kind).toBe('live'); // quiet, but the server answers
    env.serverUp = false;
    await env.advance(QUIET_MS / 3);
    expect(states[states.length - 1]!.kind).toBe('reconnecting');
    expect(env.sockets[0]!.closed).toBe(true);
  });

  it('stops for good', async () => {
    feed.start();
    env.socket.open();
    feed.stop();
    expect(env.socket.closed).toBe(true);
    await env.advance(60_000);
    expect(env.sockets).toHaveLength(1);
  });
});

describe('feedURL', () => {
  it('follows the page scheme and host', () => {
    expect(feedURL({ protocol: 'http:', host: 'localhost:8080' })).toBe('ws://localhost:8080/ws/prices');
    expect(feedURL({ protocol: 'https:', host: 'prices.example.com' })).toBe('wss://prices.example.com/ws/prices');
  });
});
