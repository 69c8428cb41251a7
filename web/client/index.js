// @groupcast/client: live Groupcast events in the browser, and the REST calls a UI needs.
export { RealtimeClient, DEFAULTS } from './src/realtime.js';
export { ApiClient, ApiError, parseRetryAfter } from './src/rest.js';
export { backoffDelay, backoffCeiling, DEFAULT_BACKOFF } from './src/backoff.js';
export { tokenExpiry } from './src/jwt.js';
export { StreamPositions } from './src/positions.js';
export { RecentIds } from './src/lru.js';
