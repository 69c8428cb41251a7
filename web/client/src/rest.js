// Typed REST calls a UI needs. Every non-2xx answer becomes an ApiError
// carrying the API's {"error":{"code","message"}} envelope and, on 429, the
// Retry-After header in seconds.

import { tokenExpiry } from './jwt.js';

export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} code
   * @param {string} message
   * @param {number | undefined} retryAfter seconds
   */
  constructor(status, code, message, retryAfter) {
    super(`${status} ${code}: ${message}`);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.detail = message;
    this.retryAfter = retryAfter;
  }
}

/**
 * Retry-After as seconds: either delta-seconds or an HTTP date (RFC 9110
 * §10.2.3). undefined when absent or unreadable.
 * @param {string | null} value
 * @param {number} now milliseconds since the epoch
 */
export function parseRetryAfter(value, now = Date.now()) {
  if (value == null || value.trim() === '') return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v);
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, Math.ceil((at - now) / 1000));
}

// Refetch a token this long before it expires, so a request never leaves
// with a token that dies on the way.
const TOKEN_MARGIN_MS = 30_000;

export class ApiClient {
  /** @param {import('../index.js').ApiOptions} options */
  constructor(options) {
    if (!options || typeof options.baseUrl !== 'string') throw new TypeError('ApiClient: baseUrl is required');
    if (typeof options.getToken !== 'function') throw new TypeError('ApiClient: getToken must be an async function');
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.getToken = options.getToken;
    this.fetch = options.fetch ?? ((...a) => globalThis.fetch(...a));
    this.now = options.now ?? (() => Date.now());
    this.token = undefined;
    this.tokenExp = undefined;
  }

  async bearer(fresh) {
    const stale = this.tokenExp !== undefined && this.tokenExp - TOKEN_MARGIN_MS <= this.now();
    if (fresh || this.token === undefined || stale) {
      this.token = await this.getToken();
      this.tokenExp = tokenExpiry(this.token);
    }
    return this.token;
  }

  /**
   * One request. body is sent as JSON; a 2xx answer's JSON is returned
   * (undefined for 204).
   */
  async request(method, path, body, query) {
    let url = this.baseUrl + path;
    if (query) {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
      const s = q.toString();
      if (s) url += '?' + s;
    }
    const send = async (fresh) => {
      const headers = { Authorization: `Bearer ${await this.bearer(fresh)}` };
      if (body !== undefined) headers['Content-Type'] = 'application/json';
      return this.fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    };
    let res = await send(false);
    // A 401 with a cached token: the token may have been revoked or the
    // clock is off; one retry with a fresh token settles it.
    if (res.status === 401) res = await send(true);
    if (res.status === 204) return undefined;
    const text = await res.text();
    let json;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      const e = json?.error;
      // API Gateway's own errors are {"message": "..."}.
      throw new ApiError(
        res.status,
        typeof e?.code === 'string' ? e.code : codeForStatus(res.status),
        typeof e?.message === 'string' ? e.message : typeof json?.message === 'string' ? json.message : res.statusText || 'request failed',
        parseRetryAfter(res.headers.get('Retry-After'), this.now()),
      );
    }
    return json;
  }

  listGroups({ scope = 'mine', limit, cursor } = {}) {
    return this.request('GET', '/groups', undefined, { scope, limit, cursor });
  }
  createGroup({ name, description = '', visibility = 'public' }) {
    return this.request('POST', '/groups', { name, description, visibility });
  }
  getGroup(groupId) {
    return this.request('GET', `/groups/${enc(groupId)}`);
  }
  joinGroup(groupId) {
    return this.request('POST', `/groups/${enc(groupId)}/members`);
  }
  leaveGroup(groupId) {
    return this.request('DELETE', `/groups/${enc(groupId)}/members/me`);
  }
  listMembers(groupId, { limit, cursor } = {}) {
    return this.request('GET', `/groups/${enc(groupId)}/members`, undefined, { limit, cursor });
  }
  listPosts(groupId, { limit, cursor, after } = {}) {
    return this.request('GET', `/groups/${enc(groupId)}/posts`, undefined, { limit, cursor, after });
  }
  createPost(groupId, content) {
    return this.request('POST', `/groups/${enc(groupId)}/posts`, { content });
  }
  invite(groupId, userIds) {
    return this.request('POST', `/groups/${enc(groupId)}/invitations`, { userIds });
  }
  listInvitations({ status = 'pending' } = {}) {
    return this.request('GET', '/invitations', undefined, { status });
  }
  acceptInvitation(groupId) {
    return this.request('POST', `/groups/${enc(groupId)}/invitations/accept`);
  }
  declineInvitation(groupId) {
    return this.request('POST', `/groups/${enc(groupId)}/invitations/decline`);
  }
  listNotifications({ limit, cursor } = {}) {
    return this.request('GET', '/notifications', undefined, { limit, cursor });
  }
  /** @param {{ids: string[]} | {all: true}} which */
  markNotificationsRead(which) {
    return this.request('POST', '/notifications/read', which);
  }
}

function enc(id) {
  return encodeURIComponent(id);
}

function codeForStatus(status) {
  return (
    { 400: 'invalid', 401: 'unauthorized', 403: 'forbidden', 404: 'not_found', 409: 'conflict', 413: 'too_large', 429: 'rate_limited' }[status] ??
    (status >= 500 ? 'internal' : 'error')
  );
}
