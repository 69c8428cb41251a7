// Reads a JWT's exp claim without verifying it: the client only needs to
// know when to fetch a new token; the server verifies.

/**
 * The token's expiry in milliseconds since the epoch, or undefined when it
 * has none or cannot be read.
 * @param {string} token
 * @returns {number | undefined}
 */
export function tokenExpiry(token) {
  const parts = typeof token === 'string' ? token.split('.') : [];
  if (parts.length !== 3) return undefined;
  try {
    const b64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
    const padded = b64 + '='.repeat((4 - (b64.length % 4)) % 4);
    const claims = JSON.parse(decodeBase64(padded));
    return typeof claims.exp === 'number' && Number.isFinite(claims.exp) ? claims.exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/** @param {string} b64 */
function decodeBase64(b64) {
  const bin = atob(b64);
  const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}
