import { backoffDelay } from './backoff';
import { tickFromMessage } from './store';
import type { Tick } from './types';

export type FeedState =
  | { kind: 'connecting' }
  | { kind: 'live' }
  | { kind: 'reconnecting'; attempt: number; retryAt: number }
  | { kind: 'offline' };

/** The part of WebSocket the feed uses. */
export interface SocketLike {
  onopen: ((ev: Event) => void) | null;
  onmessage: ((ev: MessageEvent) => void) | null;
  onclose: ((ev: CloseEvent) => void) | null;
  close(): void;
}

export interface FeedHandlers {
  /** A new connection opened: what was missed while away must be read again. */
  onSession(): void;
  onTick(t: Tick): void;
  onState(s: FeedState): void;
}

export interface FeedEnv {
  open(url: string): SocketLike;
  setTimeout(fn: () => void, ms: number): number;
  clearTimeout(id: number): void;
  now(): number;
  random(): number;
  /** Whether the server answers plain HTTP (used when the feed has been quiet). */
  probe(): Promise<boolean>;
  online(): boolean;
}

/** A socket that does not open within this time is given up and retried. */
export const CONNECT_TIMEOUT_MS = 10_000;
/** After this long without a message the server is probed. */
export const QUIET_MS = 45_000;

/**
 * LiveFeed keeps a WebSocket to /ws/prices open, reconnecting with
 * exponential backoff and jitter, and reports its state truthfully: "live"
 * only while a socket is open and the server still answers.
 */
export class LiveFeed {
  private socket: SocketLike | null = null;
  private attempt = 0;
  private timer = 0;
  private quietTimer = 0;
  private lastMessage = 0;
  private stopped = true;
  private state: FeedState = { kind: 'connecting' };

  constructor(private readonly url: string, private readonly h: FeedHandlers, private readonly env: FeedEnv) {}

  start(): void {
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    this.drop();
    this.env.clearTimeout(this.timer);
  }

  /** Reconnect at once (the user asked, or the browser came back online). */
  retryNow(): void {
    if (this.stopped || this.state.kind === 'live' || this.state.kind === 'connecting') return;
    this.env.clearTimeout(this.timer);
    this.connect();
  }

  /** The browser lost its network: stop pretending and wait for it to return. */
  wentOffline(): void {
    if (this.stopped) return;
    this.drop();
    this.env.clearTimeout(this.timer);
    this.set({ kind: 'offline' });
  }

  private set(s: FeedState): void {
    this.state = s;
    this.h.onState(s);
  }

  private connect(): void {
    this.set({ kind: 'connecting' });
    const ws = this.env.open(this.url);
    this.socket = ws;
    this.timer = this.env.setTimeout(() => this.fail(ws), CONNECT_TIMEOUT_MS);
    ws.onopen = () => {
      if (ws !== this.socket) return;
      this.env.clearTimeout(this.timer);
      this.lastMessage = this.env.now();
      this.h.onSession();
      this.set({ kind: 'live' });
      this.watchQuiet(ws);
    };
    ws.onmessage = (ev) => {
      if (ws !== this.socket) return;
      this.lastMessage = this.env.now();
      this.attempt = 0; // data flows: the next failure starts the backoff afresh
      let m: unknown;
      try {
        m = JSON.parse(String(ev.data));
      } catch {
        return;
      }
      const t = tickFromMessage(m);
      if (t) this.h.onTick(t);
    };
    ws.onclose = () => this.fail(ws);
  }

  /** Checks a quiet feed: if the server does not answer either, the socket is dead. */
  private watchQuiet(ws: SocketLike): void {
    this.quietTimer = this.env.setTimeout(async () => {
      if (ws !== this.socket) return;
      if (this.env.now() - this.lastMessage >= QUIET_MS && !(await this.env.probe())) {
        this.fail(ws);
        return;
      }
      this.watchQuiet(ws);
    }, QUIET_MS / 3);
  }

  private drop(): void {
    const ws = this.socket;
    this.socket = null;
    this.env.clearTimeout(this.quietTimer);
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = null;
      ws.close();
    }
  }

  private fail(ws: SocketLike): void {
    if (ws !== this.socket || this.stopped) return;
    this.drop();
    this.env.clearTimeout(this.timer);
    if (!this.env.online()) {
      this.set({ kind: 'offline' });
      return;
    }
    const delay = backoffDelay(this.attempt, () => this.env.random());
    this.attempt++;
    this.set({ kind: 'reconnecting', attempt: this.attempt, retryAt: this.env.now() + delay });
    this.timer = this.env.setTimeout(() => this.connect(), delay);
  }
}

/** The browser's environment for LiveFeed. */
export function browserEnv(): FeedEnv {
  return {
    open: (url) => new WebSocket(url),
    setTimeout: (fn, ms) => window.setTimeout(fn, ms),
    clearTimeout: (id) => window.clearTimeout(id),
    now: () => Date.now(),
    random: Math.random,
    probe: () => fetch('/healthz', { cache: 'no-store', signal: AbortSignal.timeout(5000) }).then((r) => r.ok, () => false),
    online: () => navigator.onLine,
  };
}

/** The feed's URL for a page at location. */
export function feedURL(location: Pick<Location, 'protocol' | 'host'>): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws/prices`;
}
