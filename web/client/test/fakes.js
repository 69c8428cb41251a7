// A fake clock and a fake WebSocket, so the client's timing and reconnects
// are tested deterministically without a network or real time.

export class FakeClock {
  constructor(start = 1_700_000_000_000) {
    this.t = start;
    this.timers = new Map();
    this.seq = 0;
  }
  now() {
    return this.t;
  }
  setTimeout(fn, ms) {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn, id });
    return id;
  }
  clearTimeout(id) {
    this.timers.delete(id);
  }
  /** Runs every timer due within ms, in order, letting promises settle between them. */
  async advance(ms) {
    const end = this.t + ms;
    for (;;) {
      await flush();
      const next = [...this.timers.values()].filter((x) => x.at <= end).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!next) break;
      this.timers.delete(next.id);
      this.t = next.at;
      next.fn();
    }
    this.t = end;
    await flush();
  }
  pending() {
    return [...this.timers.values()].map((x) => x.at - this.t).sort((a, b) => a - b);
  }
}

export async function flush() {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

/** Records every socket made; tests play the server's side. */
export function fakeWebSocketClass() {
  const sockets = [];
  class FakeWebSocket {
    constructor(url) {
      this.url = url;
      this.sent = [];
      this.closed = null;
      this.onopen = this.onmessage = this.onclose = this.onerror = null;
      sockets.push(this);
    }
    get token() {
      return new URL(this.url).searchParams.get('token');
    }
    send(data) {
      if (this.closed) throw new Error('send on closed socket');
      this.sent.push(JSON.parse(data));
    }
    close(code, reason) {
      if (this.closed) return;
      this.closed = { code, reason, by: 'client' };
    }
    // --- the server's side ---
    open() {
      this.onopen?.({});
    }
    receive(msg) {
      this.onmessage?.({ data: JSON.stringify(msg) });
    }
    drop(code = 1006) {
      this.closed = { code, by: 'server' };
      this.onclose?.({ code });
    }
    /** Answers the last unanswered request of this action. */
    lastSent(action) {
      return this.sent.filter((m) => m.action === action).at(-1);
    }
    ackSubscribe(extra = {}) {
      const m = this.lastSent('subscribe');
      this.receive({ type: 'subscribed', groupIds: m.groupIds, rejected: [], ...extra });
    }
  }
  return { FakeWebSocket, sockets };
}

/** A JWT with the given exp (seconds); unsigned, as the client never verifies. */
export function fakeJwt(expSeconds, sub = 'alice') {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b64({ alg: 'RS256', typ: 'JWT' })}.${b64({ sub, exp: expSeconds })}.sig`;
}

export function fakeEventTarget(extra = {}) {
  const handlers = new Map();
  return {
    ...extra,
    addEventListener(type, fn) {
      if (!handlers.has(type)) handlers.set(type, new Set());
      handlers.get(type).add(fn);
    },
    removeEventListener(type, fn) {
      handlers.get(type)?.delete(fn);
    },
    dispatch(type) {
      for (const fn of handlers.get(type) ?? []) fn();
    },
    count(type) {
      return handlers.get(type)?.size ?? 0;
    },
  };
}

export function event(id, type = 'group.post_created', groupId = 'g1', extra = {}) {
  return { id, type, groupId, at: '2026-01-01T00:00:00Z', data: { postId: 'p' + id, authorId: 'bob', authorName: 'Bob', contentPreview: 'hi', createdAt: '2026-01-01T00:00:00Z' }, ...extra };
}
