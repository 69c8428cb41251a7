import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RealtimeClient, backoffCeiling, backoffDelay, DEFAULTS } from '../index.js';
import { FakeClock, fakeWebSocketClass, fakeJwt, fakeEventTarget, event, flush } from './fakes.js';

const HOUR = 3_600_000;

/** A client on fakes; tokens expire in a day unless tokenTtlMs says otherwise. */
function setup(opts = {}) {
  const clock = new FakeClock();
  const { FakeWebSocket, sockets } = fakeWebSocketClass();
  const tokens = [];
  const ttl = opts.tokenTtlMs ?? 24 * HOUR;
  const getToken = async () => {
    const t = fakeJwt(Math.floor((clock.now() + ttl) / 1000), `u${tokens.length}`);
    tokens.push(t);
    return t;
  };
  const win = fakeEventTarget({ navigator: { onLine: true } });
  const doc = fakeEventTarget({ visibilityState: 'visible' });
  const client = new RealtimeClient({
    url: 'ws://127.0.0.1:3001/dev',
    getToken,
    WebSocket: FakeWebSocket,
    clock,
    random: opts.random ?? (() => 0.5),
    window: win,
    document: doc,
    ...opts.client,
  });
  const states = [];
  client.on('state', (s) => states.push(s.state));
  return { clock, sockets, tokens, client, win, doc, states };
}

/** Opens the newest socket and answers its resubscribe. */
async function openLatest(sockets, extra) {
  await flush();
  const ws = sockets.at(-1);
  ws.open();
  await flush();
  if (ws.lastSent('subscribe')) ws.ackSubscribe(extra);
  await flush();
  return ws;
}

test('backoff: full jitter stays within [0, min(cap, base*2^n)]', () => {
  const bounds = { baseMs: 100, capMs: 5_000 };
  for (let n = 0; n < 40; n++) {
    const ceiling = Math.min(5_000, 100 * 2 ** n);
    assert.equal(backoffCeiling(n, bounds), ceiling);
    assert.equal(backoffDelay(n, bounds, () => 0), 0);
    const high = backoffDelay(n, bounds, () => 0.999999);
    assert.ok(high <= ceiling && high >= ceiling * 0.99, `attempt ${n}: ${high} vs ${ceiling}`);
    for (let i = 0; i < 50; i++) {
      const d = backoffDelay(n, bounds);
      assert.ok(d >= 0 && d <= ceiling, `attempt ${n}: ${d} outside [0, ${ceiling}]`);
    }
  }
});

test('reconnect: waits the backoff, asks for a new token, grows the delay and resets it after success', async () => {
  const { clock, sockets, tokens, client, states } = setup({
    random: () => 0.999999,
    client: { backoff: { baseMs: 1_000, capMs: 8_000 } },
  });
  client.connect();
  await openLatest(sockets);
  assert.equal(client.state, 'open');
  assert.equal(tokens.length, 1);

  // Three failed attempts: the waits grow 1 s, 2 s, 4 s (ceilings, random≈1).
  sockets.at(-1).drop();
  for (const wait of [1_000, 2_000, 4_000]) {
    const before = sockets.length;
    await clock.advance(wait - 20);
    assert.equal(sockets.length, before, `reconnected before the ${wait} ms backoff`);
    await clock.advance(20);
    assert.equal(sockets.length, before + 1, `no reconnect after ${wait} ms`);
    sockets.at(-1).drop(); // the handshake fails
  }
  // The cap holds: 8 s, not 16 s.
  const before = sockets.length;
  await clock.advance(8_000);
  assert.equal(sockets.length, before + 1);
  await openLatest(sockets);
  assert.equal(client.state, 'open');
  // Every connection attempt asked the provider again.
  assert.equal(tokens.length, sockets.length);
  assert.equal(sockets.at(-1).token, tokens.at(-1));

  // After a success the next loss starts from the base again.
  sockets.at(-1).drop();
  const n = sockets.length;
  await clock.advance(1_000);
  assert.equal(sockets.length, n + 1);
  assert.deepEqual(states.slice(0, 3), ['connecting', 'open', 'reconnecting']);
});

test('resubscribe after reconnect: every subscription again, rejected ones dropped', async () => {
  const { clock, sockets, client } = setup();
  const first = client.subscribe(['g1', 'g2', 'public']);
  await openLatest(sockets);
  assert.deepEqual((await first).groupIds.sort(), ['g1', 'g2', 'public']);

  // g3 comes back rejected and must not be asked for again.
  const more = client.subscribe(['g3']);
  await flush();
  sockets.at(-1).receive({ type: 'subscribed', groupIds: [], rejected: [{ groupId: 'g3', reason: 'not_found' }] });
  assert.deepEqual((await more).rejected, [{ groupId: 'g3', reason: 'not_found' }]);
  const unsub = client.unsubscribe(['g2']);
  await flush();
  assert.deepEqual(sockets.at(-1).lastSent('unsubscribe').groupIds, ['g2']);
  sockets.at(-1).receive({ type: 'unsubscribed', groupIds: ['g2'] });
  assert.deepEqual((await unsub).groupIds, ['g2']);

  sockets.at(-1).drop();
  await clock.advance(DEFAULTS.pongTimeoutMs + 60_000);
  const ws = sockets.at(-1);
  ws.open();
  await flush();
  const resub = ws.lastSent('subscribe');
  assert.ok(resub, 'no subscribe on the new socket');
  assert.deepEqual(resub.groupIds.sort(), ['g1', 'public']);
  assert.equal(resub.positions, undefined, 'positions sent although no event carried one');
  // Not open until the resubscribe is answered.
  assert.notEqual(client.state, 'open');
  ws.ackSubscribe();
  await flush();
  assert.equal(client.state, 'open');
});

test('de-duplication: an event id is delivered once, across sockets, within a bounded memory', async () => {
  const { sockets, client, clock } = setup({ client: { dedupeSize: 3 } });
  const got = [];
  const all = [];
  client.on('group.post_created', (e) => got.push(e.id));
  client.on('*', (e) => all.push(e.id));
  client.subscribe(['g1']);
  const ws = await openLatest(sockets);
  ws.receive(event('a'));
  ws.receive(event('a'));
  ws.receive(event('b', 'group.member_joined'));
  // Redelivered on the next socket (e.g. a stream batch retried).
  ws.drop();
  await clock.advance(60_000);
  const ws2 = await openLatest(sockets);
  ws2.receive(event('a'));
  assert.deepEqual(got, ['a']);
  assert.deepEqual(all, ['a', 'b']);
  // Memory is bounded: after 3 newer ids, 'a' is forgotten.
  for (const id of ['c', 'd', 'e']) ws2.receive(event(id));
  assert.equal(client.recent.size, 3);
  ws2.receive(event('a'));
  assert.deepEqual(got, ['a', 'c', 'd', 'e', 'a']);
});

test('keep-alive: pings before the idle timeout; a missing pong reconnects', async () => {
  const { clock, sockets, client } = setup({ client: { keepAliveMs: 300_000, pongTimeoutMs: 10_000 } });
  client.subscribe(['g1']);
  const ws = await openLatest(sockets);
  assert.ok(300_000 < 600_000, 'keep-alive must be under API Gateway idle timeout');
  await clock.advance(299_000);
  assert.equal(ws.lastSent('ping'), undefined);
  await clock.advance(1_000);
  assert.ok(ws.lastSent('ping'), 'no ping after keepAliveMs');
  ws.receive({ type: 'pong' });
  await clock.advance(10_000);
  assert.equal(ws.closed, null, 'closed although the pong came');
  assert.equal(client.state, 'open');

  // The next ping gets no answer: the socket is given up and replaced.
  await clock.advance(290_000);
  assert.equal(ws.sent.filter((m) => m.action === 'ping').length, 2);
  await clock.advance(10_000);
  assert.equal(ws.closed?.by, 'client');
  assert.equal(client.state, 'reconnecting');
  await clock.advance(60_000);
  assert.equal(sockets.length, 2);
  const ws2 = await openLatest(sockets);
  assert.deepEqual(ws2.lastSent('subscribe').groupIds, ['g1']);
});

test('token refresh: the socket is replaced before the token expires, old closed only after the new one is subscribed', async () => {
  const { clock, sockets, tokens, client } = setup({ tokenTtlMs: 10 * 60_000 });
  const got = [];
  const resyncs = [];
  client.on('*', (e) => got.push(e.id));
  client.on('resync', (r) => resyncs.push(r));
  client.subscribe(['g1']);
  const old = await openLatest(sockets);
  // Rotation is due at exp - 60 s = 9 minutes (keep-alive pings meanwhile).
  await clock.advance(5 * 60_000);
  old.receive({ type: 'pong' });
  await clock.advance(4 * 60_000 - 1_000);
  assert.equal(sockets.length, 1, 'rotated too early');
  await clock.advance(1_000);
  await flush();
  assert.equal(sockets.length, 2, 'no new socket before the token expired');
  assert.equal(tokens.length, 2, 'the provider was not asked for a new token');
  const next = sockets[1];
  assert.equal(next.token, tokens[1]);
  next.open();
  await flush();
  // Overlap: both sockets deliver; the old one is still open.
  old.receive(event('x'));
  next.receive(event('x'));
  assert.equal(old.closed, null, 'old socket closed before the new one was subscribed');
  next.ackSubscribe();
  await flush();
  assert.equal(old.closed?.code, 1000);
  assert.equal(client.state, 'open');
  next.receive(event('y'));
  assert.deepEqual(got, ['x', 'y']);
  assert.deepEqual(resyncs, [], 'a rotation lost nothing, so no resync');
});

test('2-hour limit: rotates before API Gateway closes the connection', async () => {
  const { clock, sockets, client } = setup();
  client.subscribe(['g1']);
  const old = await openLatest(sockets);
  const due = DEFAULTS.maxConnectionAgeMs - DEFAULTS.rotateBeforeMs;
  // Answer keep-alive pings while waiting.
  for (let t = 0; t < due - 300_000; t += 300_000) {
    await clock.advance(300_000);
    old.receive({ type: 'pong' });
  }
  assert.equal(sockets.length, 1);
  await clock.advance(300_000);
  assert.equal(sockets.length, 2, 'no rotation before the 2-hour limit');
  await openLatest(sockets);
  assert.equal(old.closed?.code, 1000);
});

test('offline closes and stops retrying; online reconnects at once', async () => {
  const { clock, sockets, client, win, states } = setup({ client: { backoff: { baseMs: 60_000, capMs: 60_000 } } });
  client.subscribe(['g1']);
  const ws = await openLatest(sockets);
  win.dispatch('offline');
  assert.equal(client.state, 'offline');
  assert.ok(ws.closed);
  await clock.advance(10 * 60_000);
  assert.equal(sockets.length, 1, 'retried while offline');
  win.dispatch('online');
  await flush();
  assert.equal(sockets.length, 2, 'did not reconnect when back online');
  await openLatest(sockets);
  assert.deepEqual(states, ['connecting', 'open', 'offline', 'reconnecting', 'open']);
  client.close();
  assert.equal(win.count('online') + win.count('offline'), 0, 'listeners left behind');
});

test('page visibility: a visible page retries at once instead of waiting out the backoff', async () => {
  const { clock, sockets, client, doc } = setup({ client: { backoff: { baseMs: 60_000, capMs: 60_000 } }, random: () => 0.99 });
  client.subscribe(['g1']);
  const ws = await openLatest(sockets);
  ws.drop();
  await clock.advance(1_000);
  assert.equal(sockets.length, 1);
  doc.visibilityState = 'visible';
  doc.dispatch('visibilitychange');
  await flush();
  assert.equal(sockets.length, 2);
  // Visible while open: a ping checks the socket is alive.
  const ws2 = await openLatest(sockets);
  doc.dispatch('visibilitychange');
  assert.ok(ws2.lastSent('ping'));
});

const P = (n) => `01JDQ4ZK3M8X9V7T6R5P4N3M${String(n).padStart(2, '0')}`;

test('resume: the highest position per stream is sent on resubscribe; a full recovery needs no resync', async () => {
  const { clock, sockets, client } = setup();
  const resyncs = [];
  client.on('resync', (r) => resyncs.push(r));
  client.subscribe(['g1']);
  const ws = await openLatest(sockets, { positions: { 'group:g1': P(0), user: P(0) } });
  ws.receive(event('a', 'group.post_created', 'g1', { stream: 'group:g1', position: P(2) }));
  // A replayed event from before the last one does not move the stream back.
  ws.receive(event('b', 'group.post_created', 'g1', { stream: 'group:g1', position: P(1) }));
  ws.receive(event('c', 'invitation.received', 'g9', { stream: 'user', position: P(3) }));
  ws.drop();
  await clock.advance(60_000);
  const ws2 = sockets.at(-1);
  ws2.open();
  await flush();
  assert.deepEqual(ws2.lastSent('subscribe').positions, { 'group:g1': P(2), user: P(3) });
  // The server replays before it answers; a replayed duplicate is dropped.
  const got = [];
  client.on('*', (e) => got.push(e.id));
  ws2.receive(event('a', 'group.post_created', 'g1', { stream: 'group:g1', position: P(2) }));
  ws2.receive(event('d', 'group.post_created', 'g1', { stream: 'group:g1', position: P(4) }));
  ws2.ackSubscribe({ recovered: { 'group:g1': true, user: true }, positions: {} });
  await flush();
  assert.deepEqual(got, ['d'], 'the replay delivered the missed event once and dropped the one already seen');
  assert.deepEqual(resyncs, []);
  assert.equal(client.state, 'open');
});

test('resume: a stream the server could not recover asks for a resync of that stream and takes the fresh position', async () => {
  const { clock, sockets, client } = setup();
  const resyncs = [];
  client.on('resync', (r) => resyncs.push(r));
  client.subscribe(['g1', 'public']);
  await openLatest(sockets, { positions: { 'group:g1': P(1), public: P(1), user: P(1) } });
  sockets.at(-1).drop();
  await clock.advance(60_000);
  await openLatest(sockets, { recovered: { 'group:g1': false, public: true, user: true }, positions: { 'group:g1': P(9) } });
  assert.deepEqual(resyncs, [{ reason: 'not_recovered', streams: ['group:g1'] }]);
  sockets.at(-1).drop();
  await clock.advance(60_000);
  const ws = sockets.at(-1);
  ws.open();
  await flush();
  assert.deepEqual(ws.lastSent('subscribe').positions, { 'group:g1': P(9), public: P(1), user: P(1) });
});

test('resume: a stream that began during the gap (no position for it) asks for a resync', async () => {
  const { clock, sockets, client } = setup();
  const resyncs = [];
  client.on('resync', (r) => resyncs.push(r));
  client.subscribe(['*']);
  await openLatest(sockets, { positions: { user: P(1) } });
  sockets.at(-1).drop();
  await clock.advance(60_000);
  await openLatest(sockets, { groupIds: ['g7'], recovered: { user: true }, positions: { 'group:g7': P(5) } });
  assert.deepEqual(resyncs, [{ reason: 'not_recovered', streams: ['group:g7'] }]);
});

test('resume: with no subscription the socket still resumes its own stream', async () => {
  const { clock, sockets, client } = setup();
  const resyncs = [];
  client.on('resync', (r) => resyncs.push(r));
  client.subscribe(['g1']);
  const ws = await openLatest(sockets, { positions: { 'group:g1': P(1), user: P(1) } });
  const unsub = client.unsubscribe(['g1']);
  await flush();
  ws.receive({ type: 'unsubscribed', groupIds: ['g1'], requestId: ws.lastSent('unsubscribe').requestId });
  await unsub;
  ws.drop();
  await clock.advance(60_000);
  const ws2 = sockets.at(-1);
  ws2.open();
  await flush();
  const resume = ws2.lastSent('resume');
  assert.ok(resume, 'no resume on the new socket');
  assert.equal(ws2.lastSent('subscribe'), undefined);
  assert.deepEqual(resume.positions, { 'group:g1': P(1), user: P(1) });
  ws2.receive({ type: 'resumed', requestId: resume.requestId, recovered: { 'group:g1': true, user: true }, positions: {} });
  await flush();
  assert.equal(client.state, 'open');
  assert.deepEqual(resyncs, []);
});

test('resume: a server that does not resume (no recovered map) gets a resync after a gap, not before', async () => {
  const { clock, sockets, client } = setup();
  const resyncs = [];
  client.on('resync', (r) => resyncs.push(r));
  client.subscribe(['g1']);
  const ws = await openLatest(sockets);
  assert.deepEqual(resyncs, [], 'resync on the first connection');
  ws.drop();
  await clock.advance(60_000);
  await openLatest(sockets);
  assert.deepEqual(resyncs, [{ reason: 'reconnected', streams: [] }]);
});

test('replies are matched by the requestId the server echoes', async () => {
  const { sockets, client } = setup();
  client.subscribe(['g1']);
  const ws = await openLatest(sockets);
  const a = client.subscribe(['g2']);
  await flush();
  const idA = ws.lastSent('subscribe').requestId;
  ws.receive({ type: 'subscribed', requestId: idA, groupIds: ['g2'], rejected: [] });
  assert.deepEqual((await a).groupIds, ['g2']);
});

test('replies are matched to their requests; an error reply rejects', async () => {
  const { sockets, client } = setup();
  client.subscribe(['g1']);
  const ws = await openLatest(sockets);
  const p = client.subscribe(['bad']);
  await flush();
  assert.match(ws.lastSent('subscribe').requestId, /^r\d+$/);
  ws.receive({ type: 'error', code: 'bad_request', message: 'nope' });
  await assert.rejects(p, (err) => err.code === 'bad_request');
});

test('close stops everything', async () => {
  const { clock, sockets, client } = setup();
  client.subscribe(['g1']);
  const ws = await openLatest(sockets);
  client.close();
  assert.equal(ws.closed?.code, 1000);
  assert.equal(client.state, 'closed');
  await clock.advance(3 * HOUR);
  assert.equal(sockets.length, 1);
  assert.deepEqual(clock.pending(), []);
});
