// @ts-check
/**
 * The open sync exceptions this device's offline work caused (a sale, write-off or count the
 * server could not apply in full): fetched from `GET /api/v1/sync/exceptions` after a sync and
 * kept in the store's `meta`, so the list reads offline as of the last fetch.
 * @module
 */

/** @typedef {import("./replica.js").Replica} Replica */
/**
 * @typedef {{id: number, kind: string, status: string, sku: string, warehouse: string,
 *   replica_id: string, mutation_id: string, requested: number, applied: number,
 *   shortfall: number, created_at: string}} SyncException
 * @typedef {{fetched: number, warehouse: string, items: SyncException[]}} Fetched
 */

const KEY = "exceptions";
const PAGE = 200;
/** A device with more open exceptions than this has a problem the console shows better. */
const MAX_PAGES = 25;
const KINDS = /** @type {Record<string, string>} */ ({
  "stock.sell": "Sale",
  "stock.adjust": "Adjustment",
  "stock.count": "Count",
});

/**
 * Fetch the warehouse's open exceptions raised by this replica's mutations, and store them.
 * The API has no replica filter: a clerk sees every open exception of their warehouses, and
 * the app keeps those of its own replica id.
 * @param {Replica} replica
 * @returns {Promise<Fetched | undefined>}
 */
export async function fetchOpen(replica) {
  const warehouse = await replica.warehouse();
  if (!warehouse) return undefined;
  /** @type {SyncException[]} */
  const items = [];
  /** @type {string | null} */
  let cursor = null;
  for (let page = 0; page < MAX_PAGES; page++) {
    const params = new URLSearchParams({ status: "open", warehouse, limit: String(PAGE) });
    if (cursor) params.set("cursor", cursor);
    /** @type {{items: SyncException[], next_cursor: string | null}} */
    const answer = await replica.request("GET", `/sync/exceptions?${params}`);
    items.push(...answer.items.filter((e) => e.replica_id === replica.replicaId));
    cursor = answer.next_cursor;
    if (!cursor) break;
  }
  /** @type {Fetched} */
  const fetched = { fetched: Date.now(), warehouse, items };
  await replica.store.setMeta(KEY, fetched);
  return fetched;
}

/**
 * The list of the last fetch for the current warehouse (another warehouse's is not shown).
 * @param {Replica} replica
 * @returns {Promise<Fetched | undefined>}
 */
export async function stored(replica) {
  /** @type {Fetched | undefined} */
  const held = await replica.store.getMeta(KEY);
  return held && held.warehouse === (await replica.warehouse()) ? held : undefined;
}

/**
 * Whether a sync should fetch the list again: something was pushed (it may have raised one),
 * or the stored list has open ones (a manager may have resolved them), or it was never fetched.
 * @param {Replica} replica @param {number} pushed
 */
export async function due(replica, pushed) {
  const held = await stored(replica);
  return pushed > 0 || !held || held.items.length > 0;
}

/** @param {SyncException} e */
export function describe(e) {
  const kind = KINDS[e.kind] ?? e.kind;
  return (
    `Exception ${e.id}: ${kind} of ${e.sku}: ${e.requested} taken off, ${e.applied} applied, ` +
    `${e.shortfall} short · ${new Date(e.created_at).toLocaleString()}`
  );
}
