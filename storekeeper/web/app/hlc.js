// @ts-check
/**
 * The replica's hybrid logical clock (docs/sync.md "Hybrid logical clocks"): the same rules as
 * storekeeper/client/hlc.py. Pure functions over the clock state; the store keeps the state.
 * @module
 */

/** @typedef {{wall: number, counter: number}} Clock */

const STAMP = /^(0|[1-9][0-9]{0,14})-(0|[1-9][0-9]{0,8})-([A-Za-z0-9][A-Za-z0-9._:-]{0,63})$/;

/** @type {Clock} */
export const ZERO = { wall: 0, counter: 0 };

/**
 * The clock after stamping a local edit at physical time `nowMs` (the send rule).
 * @param {Clock} clock
 * @param {number} nowMs
 * @returns {Clock}
 */
export function tick(clock, nowMs) {
  if (nowMs > clock.wall) return { wall: nowMs, counter: 0 };
  return { wall: clock.wall, counter: clock.counter + 1 };
}

/**
 * The clock after seeing a pulled product's stamp (the receive rule); null or unreadable
 * stamps change nothing.
 * @param {Clock} clock
 * @param {string | null | undefined} stamp
 * @returns {Clock}
 */
export function observe(clock, stamp) {
  if (!stamp) return clock;
  const match = STAMP.exec(stamp);
  if (!match) return clock;
  const wall = Number(match[1]);
  const counter = Number(match[2]);
  if (wall > clock.wall || (wall === clock.wall && counter > clock.counter)) {
    return { wall, counter };
  }
  return clock;
}

/**
 * The text of the clock state as a stamp of `node`.
 * @param {Clock} clock
 * @param {string} node
 */
export function stamp(clock, node) {
  return `${clock.wall}-${clock.counter}-${node}`;
}
