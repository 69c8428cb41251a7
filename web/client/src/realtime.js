// The live half of the client: one WebSocket at a time (two for a moment
// while it rotates), reconnecting with backoff, kept alive under API
// Gateway's idle timeout, replaced before its 2-hour limit, resubscribed
// after every reconnect, with duplicates dropped by event id.

import { DEFAULT_BACKOFF, backoffDelay } from './backoff.js';
import { RecentIds } from './lru.js';
import { tokenExpiry } from './jwt.js';
import { StreamPositions } from './positions.js';

export const DEFAULTS = Object.freeze({
  // API Gateway closes a WebSocket idle for 10 minutes; a ping every 5
  // keeps it open with room to spare even when a background tab's timers
  // run up to a minute late (Chrome's intensive throttling).
  // https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html
  keepAliveMs: 5 * 60_000,
  // A pong normally comes back within a Lambda invocation; 15 s without one
  // means the socket is dead even though the browser has not noticed.
  pongTimeoutMs: 15_000,
  // API Gateway closes every WebSocket after 2 hours (same page).
  maxConnectionAgeMs: 2 * 60 * 60_000,
  // Rotate this long before the 2-hour limit: a new socket connects and
  // subscribes in well under a second, but a slow token provider or a few
  // retries must fit in the window too.
  rotateBeforeMs: 5 * 60_000,
  // Replace the connection this long before its token expires, so the
  // provider is asked for a new token while the old one still works.
  tokenRefreshMarginMs: 60_000,
  // Never rotate sooner than this after connecting: a provider that keeps
  // returning nearly expired tokens must not cause a reconnect loop.
  minRotateAfterMs: 30_000,
  // API Gateway's integration timeout is 29 s: no reply can come later.
  requestTimeoutMs: 30_000,
  // Event ids remembered for de-duplication: far more than can arrive
  // twice (a redelivered stream batch, the overlap of a rotation).
  dedupeSize: 1000,
});

/** @typedef {'idle'|'connecting'|'open'|'reconnecting'|'offline'|'closed'} ConnectionState */

const defaultClock = {
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (h) => globalThis.clearTimeout(h),
  now: () => Date.now(),
};

export class RealtimeClient {
  /** @param {import('../index.js').RealtimeOptions} options */
  constructor(options) {
    if (!options || typeof options.url !== 'string') throw new TypeError('RealtimeClient: url is required');
    if (typeof options.getToken !== 'function') throw new TypeError('RealtimeClient: getToken must be an async function');
    this.url = options.url;
    this.getToken = options.getToken;
    this.WebSocket = options.WebSocket ?? globalThis.WebSocket;
    this.clock = options.clock ?? defaultClock;
    this.random = options.random ?? Math.random;
    this.backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
    this.opts = { ...DEFAULTS };
    for (const k of Object.keys(DEFAULTS)) if (options[k] !== undefined) this.opts[k] = options[k];
    this.window = options.window !== undefined ? options.window : globalThis.window;
    this.document = options.document !== undefined ? options.document : globalThis.document;

    /** @type {ConnectionState} */
    this.state = 'idle';
    /** Ids the application wants, resent on every new connection. */
    this.desired = new Set();
    this.positions = new StreamPositions();
    this.recent = new RecentIds(this.opts.dedupeSize);
    /** @type {Map<string, Set<Function>>} */
    this.listeners = new Map();
    /** @type {Link | null} the connection events and requests use */
    this.current = null;
    /** @type {Link | null} a connection being opened to replace current */
    this.candidate = null;
    this.attempt = 0;
    this.retryTimer = null;
    this.everOpen = false;
    // Set when the current connection was lost: the next one has to tell
    // the application (or resume) what happened meanwhile.
    this.gap = false;
    /** @type {{resolve: Function, reject: Function}[]} */
    this.waiters = [];
    this.nextRequestId = 1;

    this.onOnline = () => this.handleOnline();
    this.onOffline = () => this.handleOffline();
    this.onVisibility = () => this.handleVisibility();
  }

  /** Starts connecting (idempotent). */
  connect() {
    if (this.state !== 'idle') return;
    this.window?.addEventListener?.('online', this.onOnline);
    this.window?.addEventListener?.('offline', this.onOffline);
    this.document?.addEventListener?.('visibilitychange', this.onVisibility);
    if (this.isOffline()) {
      this.setState('offline');
      return;
    }
    this.setState('connecting');
    this.open();
  }

  /**
   * @param {string} type an event type, '*' (every event), 'state' or 'resync'
   * @param {Function} fn
   * @returns {() => void} removes the listener
   */
  on(type, fn) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(fn);
    return () => this.off(type, fn);
  }

  off(type, fn) {
    this.listeners.get(type)?.delete(fn);
  }

  /**
   * Subscribes to groups ('*': all of the caller's groups, 'public': the
   * feed of new public groups). They are resubscribed after every
   * reconnect. Resolves with the server's subscribed reply.
   * @param {string[]} groupIds
   */
  async subscribe(groupIds) {
    const ids = checkIds(groupIds);
    for (const id of ids) this.desired.add(id);
    this.ensureStarted();
    const link = this.current;
    if (!link || !link.ready) return this.nextSubscribed();
    const reply = await link.request(this.subscribeMessage(ids), 'subscribed');
    this.afterSubscribed(link, ids, reply);
    return reply;
  }

  /**
   * Stops the groups' events; they are no longer resubscribed.
   * @param {string[]} groupIds
   */
  async unsubscribe(groupIds) {
    const ids = checkIds(groupIds);
    for (const id of ids) this.desired.delete(id);
    const link = this.current;
    if (!link || !link.ready) return { type: 'unsubscribed', groupIds: [] };
    for (const id of ids) link.sent.delete(id);
    return link.request({ action: 'unsubscribe', groupIds: ids }, 'unsubscribed');
  }

  /** The ids that are resubscribed on reconnect. */
  get subscriptions() {
    return [...this.desired];
  }

  /** Closes the connection for good. */
  close() {
    if (this.state === 'closed') return;
    this.window?.removeEventListener?.('online', this.onOnline);
    this.window?.removeEventListener?.('offline', this.onOffline);
    this.document?.removeEventListener?.('visibilitychange', this.onVisibility);
    this.cancelRetry();
    for (const link of [this.current, this.candidate]) link?.retire(1000, 'client closed');
    this.current = this.candidate = null;
    for (const w of this.waiters.splice(0)) w.reject(new Error('client closed'));
    this.setState('closed');
  }

  // ---- connection life ----

  ensureStarted() {
    if (this.state === 'idle') this.connect();
  }

  isOffline() {
    return this.window?.navigator?.onLine === false;
  }

  /** Opens a new socket: a first connection, a reconnect or a rotation. */
  async open() {
    const rotation = this.current !== null;
    let token;
    try {
      token = await this.getToken();
      if (typeof token !== 'string' || token === '') throw new Error('token provider returned no token');
    } catch (err) {
      this.emit('error', err);
      if (!rotation) this.scheduleRetry();
      else this.scheduleRotation(this.current, this.backoffDelayNow());
      return;
    }
    if (this.state === 'closed' || this.state === 'offline') return;
    const sep = this.url.includes('?') ? '&' : '?';
    const ws = new this.WebSocket(`${this.url}${sep}token=${encodeURIComponent(token)}`);
    const link = new Link(this, ws, tokenExpiry(token));
    if (rotation) this.candidate = link;
    else this.current = link;
  }

  /** The socket of link opened. */
  async linkOpened(link) {
    const ids = [...this.desired];
    // The positions this socket resumes from: the server replays what
    // came after them before it answers.
    const sent = this.positions.forSubscribe();
    let reply = { type: 'subscribed', groupIds: [], rejected: [] };
    // No subscription but positions (say, only the user's own stream):
    // resume without subscribing.
    const msg = ids.length > 0 ? this.subscribeMessage(ids) : sent ? { action: 'resume', positions: sent } : null;
    if (msg) {
      const expect = msg.action === 'resume' ? 'resumed' : 'subscribed';
      try {
        reply = await link.request(msg, expect);
      } catch (err) {
        this.emit('error', err);
        link.kill('subscribe failed');
        return;
      }
      if (reply.type !== expect) {
        this.emit('error', new Error(`resubscribe failed: ${reply.code}: ${reply.message}`));
        link.kill('subscribe failed');
        return;
      }
    }
    if (link.dead || this.state === 'closed') return;
    this.afterSubscribed(link, ids, reply);
    this.promote(link, reply, sent);
  }

  /** link is subscribed: it becomes the connection in use. */
  promote(link, reply, sent) {
    const old = this.current !== link ? this.current : null;
    const hadGap = this.gap && this.everOpen;
    this.current = link;
    if (this.candidate === link) this.candidate = null;
    link.ready = true;
    this.attempt = 0;
    this.gap = false;
    this.everOpen = true;
    link.startKeepAlive();
    this.scheduleRotation(link);
    // Only now is the old socket closed: until the new one was subscribed,
    // the old one kept delivering, so nothing falls between them.
    old?.retire(1000, 'rotated');
    this.setState('open');
    for (const w of this.waiters.splice(0)) w.resolve(reply);
    const lost = this.positions.needsResync(reply, hadGap, sent);
    this.positions.adopt(reply);
    if (lost) {
      // streams: what to reload; [] when the server could not say.
      this.emit('resync', { reason: lost.length > 0 ? 'not_recovered' : 'reconnected', streams: lost });
    }
    this.reconcile(link);
  }

  /** Sends what changed while link was subscribing (subscribe() calls made meanwhile). */
  reconcile(link) {
    const add = [...this.desired].filter((id) => !link.sent.has(id));
    const remove = [...link.sent].filter((id) => !this.desired.has(id));
    if (add.length > 0) {
      link.request(this.subscribeMessage(add), 'subscribed')
        .then((r) => this.afterSubscribed(link, add, r))
        .catch((err) => this.emit('error', err));
    }
    if (remove.length > 0) {
      for (const id of remove) link.sent.delete(id);
      link.request({ action: 'unsubscribe', groupIds: remove }, 'unsubscribed').catch((err) => this.emit('error', err));
    }
  }

  afterSubscribed(link, ids, reply) {
    if (reply?.type === 'resumed') this.positions.adopt(reply);
    if (reply?.type !== 'subscribed') return;
    // Start positions for the streams just subscribed (a later reconnect
    // resumes them even if no event of theirs arrives before it).
    this.positions.adopt(reply);
    for (const id of ids) link.sent.add(id);
    // A rejected id (no such group, not a member, over the cap) would be
    // rejected again on every reconnect: stop asking for it.
    for (const r of reply.rejected ?? []) {
      this.desired.delete(r.groupId);
      link.sent.delete(r.groupId);
    }
  }

  /** link's socket closed or was found dead. */
  linkLost(link) {
    if (link === this.candidate) {
      this.candidate = null;
      // The rotation failed; the current socket still works. Try again later.
      if (this.current && !this.current.dead) this.scheduleRotation(this.current, this.backoffDelayNow());
      return;
    }
    if (link !== this.current) return;
    this.current = null;
    this.gap = true;
    if (this.state === 'closed' || this.state === 'offline') return;
    if (this.candidate) return; // the replacement is already on its way
    this.scheduleRetry();
  }

  scheduleRetry() {
    if (this.state === 'closed' || this.state === 'offline') return;
    this.cancelRetry();
    this.setState(this.everOpen ? 'reconnecting' : 'connecting');
    const delay = this.backoffDelayNow();
    this.retryTimer = this.clock.setTimeout(() => {
      this.retryTimer = null;
      this.open();
    }, delay);
  }

  backoffDelayNow() {
    return backoffDelay(this.attempt++, this.backoff, this.random);
  }

  cancelRetry() {
    if (this.retryTimer !== null) this.clock.clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  /** Plans the replacement of link before its age limit or its token's expiry. */
  scheduleRotation(link, delay) {
    link.clearRotation();
    if (delay === undefined) {
      const now = this.clock.now();
      let at = link.openedAt + this.opts.maxConnectionAgeMs - this.opts.rotateBeforeMs;
      if (link.tokenExp !== undefined) at = Math.min(at, link.tokenExp - this.opts.tokenRefreshMarginMs);
      delay = Math.max(at - now, link.openedAt + this.opts.minRotateAfterMs - now, 0);
    }
    link.rotationTimer = this.clock.setTimeout(() => {
      link.rotationTimer = null;
      if (link === this.current && !this.candidate && this.state === 'open') this.open();
    }, delay);
  }

  handleOffline() {
    if (this.state === 'closed') return;
    this.cancelRetry();
    for (const link of [this.current, this.candidate]) link?.retire(1000, 'offline');
    if (this.current) this.gap = true;
    this.current = this.candidate = null;
    this.setState('offline');
  }

  handleOnline() {
    if (this.state !== 'offline') return;
    this.attempt = 0;
    this.setState(this.everOpen ? 'reconnecting' : 'connecting');
    this.open();
  }

  handleVisibility() {
    if (this.document?.visibilityState !== 'visible') return;
    if (this.retryTimer !== null) {
      // The user is looking: retry now instead of waiting out the backoff.
      this.cancelRetry();
      this.open();
    } else if (this.current?.ready) {
      // A sleeping laptop's socket may be dead without a close event.
      this.current.ping();
    }
  }

  // ---- messages ----

  subscribeMessage(ids) {
    const msg = { action: 'subscribe', groupIds: ids };
    const positions = this.positions.forSubscribe();
    if (positions) msg.positions = positions;
    return msg;
  }

  requestId() {
    return `r${this.nextRequestId++}`;
  }

  nextSubscribed() {
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** An event arrived on any of the sockets. */
  deliver(event) {
    if (this.recent.seen(event.id)) return;
    this.positions.observe(event);
    this.emit(event.type, event);
    this.emit('*', event);
  }

  setState(state) {
    if (this.state === state) return;
    const previous = this.state;
    this.state = state;
    this.emit('state', { state, previous });
  }

  emit(type, payload) {
    for (const fn of [...(this.listeners.get(type) ?? [])]) {
      try {
        fn(payload);
      } catch (err) {
        // One failing listener must not stop the others or the socket.
        if (typeof globalThis.reportError === 'function') globalThis.reportError(err);
        else console.error(err);
      }
    }
  }
}

/** One WebSocket and what belongs to it. */
class Link {
  constructor(client, ws, tokenExp) {
    this.client = client;
    this.ws = ws;
    this.tokenExp = tokenExp;
    this.openedAt = client.clock.now();
    this.ready = false; // subscribed and in use
    this.dead = false;
    this.sent = new Set();
    /** @type {{id: string, expect: string, resolve: Function, reject: Function, timer: unknown}[]} */
    this.pending = [];
    // subscribe/unsubscribe go one at a time: replies echo the requestId,
    // but a subscribe's replayed events come before its reply, and one at
    // a time keeps each replay whole before the next request.
    this.queue = Promise.resolve();
    this.keepAliveTimer = null;
    this.pongTimer = null;
    this.rotationTimer = null;
    ws.onopen = () => {
      if (this.dead) return;
      this.openedAt = client.clock.now();
      client.linkOpened(this);
    };
    ws.onmessage = (ev) => this.onMessage(ev.data);
    ws.onclose = () => this.kill('closed');
    ws.onerror = () => {}; // a close event always follows
  }

  onMessage(data) {
    if (this.dead) return;
    let msg;
    try {
      msg = JSON.parse(typeof data === 'string' ? data : String(data));
    } catch {
      return;
    }
    if (!msg || typeof msg !== 'object') return;
    // Events carry an id; replies do not.
    if (typeof msg.id === 'string' && typeof msg.type === 'string') {
      this.client.deliver(msg);
      return;
    }
    if (msg.type === 'pong') {
      this.client.clock.clearTimeout(this.pongTimer);
      this.pongTimer = null;
    }
    this.resolveReply(msg);
  }

  resolveReply(msg) {
    let i = -1;
    if (typeof msg.requestId === 'string') i = this.pending.findIndex((p) => p.id === msg.requestId);
    if (i < 0 && msg.type === 'error') i = 0;
    if (i < 0) i = this.pending.findIndex((p) => p.expect === msg.type);
    if (i < 0 || i >= this.pending.length) return;
    const [p] = this.pending.splice(i, 1);
    this.client.clock.clearTimeout(p.timer);
    if (msg.type === 'error') p.reject(Object.assign(new Error(msg.message ?? 'request failed'), { code: msg.code, reply: msg }));
    else p.resolve(msg);
  }

  /** Sends msg and resolves with the reply of type expect. */
  request(msg, expect) {
    const run = () => this.send(msg, expect);
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => {});
    return result;
  }

  send(msg, expect) {
    return new Promise((resolve, reject) => {
      if (this.dead) {
        reject(new Error('connection closed'));
        return;
      }
      const id = this.client.requestId();
      const timer = this.client.clock.setTimeout(() => {
        const i = this.pending.findIndex((p) => p.id === id);
        if (i >= 0) this.pending.splice(i, 1);
        reject(new Error(`no ${expect} reply within ${this.client.opts.requestTimeoutMs} ms`));
      }, this.client.opts.requestTimeoutMs);
      this.pending.push({ id, expect, resolve, reject, timer });
      try {
        // The server echoes requestId on the reply (and on an error).
        this.ws.send(JSON.stringify({ ...msg, requestId: id }));
      } catch (err) {
        this.kill('send failed');
      }
    });
  }

  startKeepAlive() {
    const tick = () => {
      this.keepAliveTimer = this.client.clock.setTimeout(() => {
        this.ping();
        tick();
      }, this.client.opts.keepAliveMs);
    };
    tick();
  }

  /** Sends a ping; no pong in time means the socket is dead. */
  ping() {
    if (this.dead || this.pongTimer !== null) return;
    this.pongTimer = this.client.clock.setTimeout(() => {
      this.pongTimer = null;
      this.kill('no pong');
    }, this.client.opts.pongTimeoutMs);
    try {
      this.ws.send(JSON.stringify({ action: 'ping' }));
    } catch {
      this.kill('send failed');
    }
  }

  clearRotation() {
    if (this.rotationTimer !== null) this.client.clock.clearTimeout(this.rotationTimer);
    this.rotationTimer = null;
  }

  stopTimers() {
    const c = this.client.clock;
    for (const t of [this.keepAliveTimer, this.pongTimer, this.rotationTimer]) if (t !== null) c.clearTimeout(t);
    this.keepAliveTimer = this.pongTimer = this.rotationTimer = null;
    for (const p of this.pending.splice(0)) {
      c.clearTimeout(p.timer);
      p.reject(new Error('connection closed'));
    }
  }

  /** Closes the socket on purpose; the client already moved on. */
  retire(code, reason) {
    if (this.dead) return;
    this.dead = true;
    this.stopTimers();
    try {
      this.ws.close(code, reason);
    } catch {
      // already closing
    }
  }

  /** The socket failed: close it (if it is not) and let the client recover. */
  kill(why) {
    if (this.dead) return;
    this.dead = true;
    this.stopTimers();
    try {
      this.ws.close(4000, why);
    } catch {
      // already closed
    }
    this.client.linkLost(this);
  }
}

function checkIds(groupIds) {
  if (!Array.isArray(groupIds) || groupIds.length === 0 || groupIds.some((id) => typeof id !== 'string' || id === '')) {
    throw new TypeError('groupIds must be a non-empty array of non-empty strings');
  }
  return [...new Set(groupIds)];
}
