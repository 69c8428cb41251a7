// A bounded set of recently seen ids, oldest evicted first. A Map keeps
// insertion order, so re-inserting an id on a hit makes it the newest.

export class RecentIds {
  /** @param {number} capacity */
  constructor(capacity) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
    }
    this.capacity = capacity;
    /** @type {Map<string, true>} */
    this.ids = new Map();
  }

  /**
   * Records id; reports whether it was already there.
   * @param {string} id
   */
  seen(id) {
    const had = this.ids.delete(id);
    this.ids.set(id, true);
    if (this.ids.size > this.capacity) {
      this.ids.delete(this.ids.keys().next().value);
    }
    return had;
  }

  get size() {
    return this.ids.size;
  }
}
