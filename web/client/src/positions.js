// Resuming streams (README "Resuming after a reconnect"). Every event the
// server pushes carries `stream` ("group:<id>", "user", "public") and
// `position` (a ULID, which sorts as a string). The client keeps the
// highest position of each stream, sends them as `positions` on every
// (re)subscribe (or with a `resume` action when it has no subscription),
// and the server replays what the socket missed with the same event ids
// (the client drops the ones it already has). The subscribed/resumed reply
// says per stream whether it could (`recovered`) and hands out a position
// for each stream the client had none for (`positions`).

export class StreamPositions {
  constructor() {
    /** @type {Map<string, string>} */
    this.last = new Map();
  }

  /**
   * Notes the position of an event that was delivered to the application.
   * Events of one stream may arrive out of order (a replay overlaps live
   * pushes), so only a higher position moves the stream forward.
   * @param {{stream?: unknown, position?: unknown}} event
   */
  observe(event) {
    const { stream, position } = event;
    if (typeof stream !== 'string' || stream === '' || typeof position !== 'string' || position === '') return;
    const known = this.last.get(stream);
    if (known === undefined || position > known) this.last.set(stream, position);
  }

  /**
   * Takes the positions a subscribed or resumed reply hands out: a start
   * for streams the client had none for, and a fresh one for streams that
   * did not recover (the application reloads those through REST).
   * @param {{positions?: unknown, recovered?: unknown}} reply
   */
  adopt(reply) {
    const given = reply?.positions;
    if (!given || typeof given !== 'object') return;
    const recovered = reply.recovered && typeof reply.recovered === 'object' ? reply.recovered : {};
    for (const [stream, position] of Object.entries(given)) {
      if (typeof position !== 'string' || position === '') continue;
      if (!this.last.has(stream) || recovered[stream] === false) this.last.set(stream, position);
    }
  }

  /**
   * The positions to send, or undefined when none are known (the field is
   * then left out of the message).
   * @returns {Record<string, string> | undefined}
   */
  forSubscribe() {
    return this.last.size === 0 ? undefined : Object.fromEntries(this.last);
  }

  /**
   * The streams the application must reload through REST after the reply
   * to the first subscribe (or resume) on a new socket. afterGap: the
   * previous socket was lost before this one was subscribed, so events may
   * have been missed. Returns null when nothing needs reloading, else the
   * list of streams ([] when the server cannot tell: a server that does not
   * resume, or a socket that had no position to resume from).
   * @param {{recovered?: unknown, positions?: unknown}} reply
   * @param {boolean} afterGap
   * @param {Record<string, string> | undefined} sent the positions sent
   * @returns {string[] | null}
   */
  needsResync(reply, afterGap, sent) {
    if (!afterGap) return null;
    const recovered = reply?.recovered;
    if (!sent || !recovered || typeof recovered !== 'object') return [];
    const lost = Object.keys(sent).filter((s) => recovered[s] !== true);
    // A stream the server hands a first position for that the client had
    // none for (a group joined elsewhere while this socket was away)
    // started during the gap: what happened in it is unknown.
    const given = reply.positions && typeof reply.positions === 'object' ? Object.keys(reply.positions) : [];
    for (const s of given) if (!(s in sent) && !lost.includes(s)) lost.push(s);
    return lost.length > 0 ? lost : null;
  }

  /** Forgets every position. */
  reset() {
    this.last.clear();
  }
}
