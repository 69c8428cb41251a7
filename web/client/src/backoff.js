// Exponential backoff with full jitter: the n-th retry (from 0) waits a
// uniformly random time in [0, min(cap, base * 2^n)], so clients that lost
// their sockets together do not reconnect together.
// https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/

/** @type {{baseMs: number, capMs: number}} */
export const DEFAULT_BACKOFF = {
  // Half a second: a dropped socket usually comes back on the first try,
  // and a user should not wait long for it.
  baseMs: 500,
  // Thirty seconds: long enough to spare a server that is down, short
  // enough that a page recovers soon after it is back.
  capMs: 30_000,
};

/**
 * The upper bound of the delay before retry number attempt (0-based).
 * @param {number} attempt
 * @param {{baseMs: number, capMs: number}} bounds
 */
export function backoffCeiling(attempt, { baseMs, capMs }) {
  // 2^attempt overflows to Infinity for large attempts; min() keeps it at cap.
  return Math.min(capMs, baseMs * 2 ** Math.max(0, attempt));
}

/**
 * A full-jitter delay in [0, backoffCeiling(attempt)].
 * @param {number} attempt
 * @param {{baseMs: number, capMs: number}} bounds
 * @param {() => number} [random] returns [0, 1)
 */
export function backoffDelay(attempt, bounds, random = Math.random) {
  return Math.floor(random() * backoffCeiling(attempt, bounds));
}
