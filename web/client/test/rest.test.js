import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiClient, ApiError, parseRetryAfter, tokenExpiry } from '../index.js';
import { fakeJwt } from './fakes.js';

/** A fetch that answers from a list and records requests. */
function fakeFetch(answers) {
  const calls = [];
  const fn = async (url, init) => {
    calls.push({ url, ...init });
    const a = answers.shift();
    return new Response(a.body === undefined ? null : typeof a.body === 'string' ? a.body : JSON.stringify(a.body), {
      status: a.status ?? 200,
      headers: a.headers ?? {},
    });
  };
  return { fn, calls };
}

test('error envelope and Retry-After become an ApiError', async () => {
  const { fn } = fakeFetch([
    { status: 429, headers: { 'Retry-After': '7' }, body: { error: { code: 'rate_limited', message: 'slow down' } } },
  ]);
  const api = new ApiClient({ baseUrl: 'http://api/dev/', getToken: async () => 't', fetch: fn });
  await assert.rejects(api.createPost('g1', 'hi'), (err) => {
    assert.ok(err instanceof ApiError);
    assert.equal(err.status, 429);
    assert.equal(err.code, 'rate_limited');
    assert.equal(err.detail, 'slow down');
    assert.equal(err.retryAfter, 7);
    return true;
  });
});

test("API Gateway's own errors ({message}) and empty bodies still give a code", async () => {
  const { fn } = fakeFetch([{ status: 413, body: { message: 'Request Too Long' } }, { status: 503, body: '' }]);
  const api = new ApiClient({ baseUrl: 'http://api', getToken: async () => 't', fetch: fn });
  await assert.rejects(api.getGroup('g'), (e) => e.code === 'too_large' && e.detail === 'Request Too Long' && e.retryAfter === undefined);
  await assert.rejects(api.getGroup('g'), (e) => e.status === 503 && e.code === 'internal');
});

test('Retry-After as an HTTP date', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  assert.equal(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now), 30);
  assert.equal(parseRetryAfter('120', now), 120);
  assert.equal(parseRetryAfter('soon', now), undefined);
  assert.equal(parseRetryAfter(null, now), undefined);
});

test('requests: paths escaped, query built, JSON body, bearer token, 204 is undefined', async () => {
  const { fn, calls } = fakeFetch([
    { status: 200, body: { items: [], nextCursor: 'c2' } },
    { status: 201, body: { postId: 'p1' } },
    { status: 204 },
  ]);
  const api = new ApiClient({ baseUrl: 'http://api/dev', getToken: async () => 'tok', fetch: fn });
  assert.deepEqual(await api.listPosts('a/b', { limit: 5, after: 'P1' }), { items: [], nextCursor: 'c2' });
  await api.createPost('g1', 'hello');
  assert.equal(await api.markNotificationsRead({ all: true }), undefined);
  assert.equal(calls[0].url, 'http://api/dev/groups/a%2Fb/posts?limit=5&after=P1');
  assert.equal(calls[0].method, 'GET');
  assert.equal(calls[0].body, undefined);
  assert.equal(calls[1].headers.Authorization, 'Bearer tok');
  assert.equal(calls[1].headers['Content-Type'], 'application/json');
  assert.deepEqual(JSON.parse(calls[1].body), { content: 'hello' });
  assert.equal(calls[2].url, 'http://api/dev/notifications/read');
});

test('token: cached until it nears expiry, refetched after a 401', async () => {
  let now = 1_000_000_000_000;
  let n = 0;
  const getToken = async () => fakeJwt(Math.floor(now / 1000) + 120, `t${n++}`);
  const { fn, calls } = fakeFetch([{ body: {} }, { body: {} }, { body: {} }, { status: 401, body: {} }, { body: {} }]);
  const api = new ApiClient({ baseUrl: 'http://api', getToken, fetch: fn, now: () => now });
  await api.getGroup('g');
  await api.getGroup('g');
  assert.equal(n, 1, 'token not cached');
  now += 100_000; // 20 s before exp: inside the margin
  await api.getGroup('g');
  assert.equal(n, 2, 'token near expiry not refreshed');
  await api.getGroup('g'); // 401, then a retry with a fresh token
  assert.equal(n, 3);
  assert.notEqual(calls[3].headers.Authorization, calls[4].headers.Authorization);
});

test('tokenExpiry reads exp; garbage gives undefined', () => {
  assert.equal(tokenExpiry(fakeJwt(1_800_000_000)), 1_800_000_000_000);
  assert.equal(tokenExpiry('garbage'), undefined);
  assert.equal(tokenExpiry('a.b.c'), undefined);
});
