// The resume seam. Everything the client knows about resumable streams is
// here, so it can be completed when the server side lands (issue 11,
// items 1-4) without touching the connection logic.
//
// Today's server pushes events without a position: nothing is tracked,
// subscribe messages carry no "positions", and after a reconnect the
// client asks the application to reload through REST ("resync").
// When events carry `stream` and `position`, the last position of each
// stream is kept and sent on every (re)subscribe as
// {"positions": {"<stream>": <position>}}; a subscribed reply saying
// `recovered: false` (the retention window passed) asks for a resync.

export class StreamPositions {
  constructor() {
    /** @type {Map<string, string | number>} */
    this.last = new Map();
  }

  /**
   * Notes the position of an event that was delivered to the application.
   * @param {{stream?: unknown, position?: unknown}} event
   */
  observe(event) {
    const { stream, position } = event;
    if (typeof stream !== 'string' || stream === '') return;
    if (typeof position !== 'string' && typeof position !== 'number') return;
    this.last.set(stream, position);
  }

  /**
   * The positions to send with a subscribe, or undefined when none are
   * known (the field is then left out of the message).
   * @returns {Record<string, string | number> | undefined}
   */
  forSubscribe() {
    return this.last.size === 0 ? undefined : Object.fromEntries(this.last);
  }

  /**
   * Whether the application must reload its state through REST after a
   * subscribed reply on a new connection. afterGap: the previous socket
   * was lost before this one was subscribed, so events may have been
   * missed.
   * @param {{recovered?: unknown}} reply
   * @param {boolean} afterGap
   */
  needsResync(reply, afterGap) {
    if (!afterGap) return false;
    // A server that resumes says whether it could; one that does not says
    // nothing, and then whatever happened in the gap is lost.
    if (typeof reply.recovered === 'boolean') return !reply.recovered;
    return true;
  }

  /** Forgets every position (after a resync the application starts afresh). */
  reset() {
    this.last.clear();
  }
}
