// @ts-check
/**
 * The app's local store in IndexedDB (through the vendored `idb` wrapper): the server copy
 * (`products`, `stock`, changed only by pulls), the `queue` of pending mutations, the server's
 * `verdicts`, and `meta` (cursor, replica id, scope, clock, tokens, signed-in user).
 *
 * Every step that must not be half done is one IndexedDB transaction over the stores it
 * touches: a pulled page with its cursor and the clock; a clock tick with its queue entry; a
 * verdict with the removal of its mutation from the queue (docs/sync.md, "What the client
 * library must do").
 * @module
 */
import { openDB, unwrap } from "./vendor/idb-8.0.4/index.js";
import * as hlc from "./hlc.js";

/**
 * @typedef {{sku: string, name: string, price_cents: number, currency: string,
 *   attributes?: Record<string, unknown>, min_temp_c?: number | null,
 *   max_temp_c?: number | null, hlc?: string | null, barcodes?: string[]}} Product
 * @typedef {{sku: string, warehouse: string, on_hand: number, reserved: number,
 *   available: number}} StockRow
 * @typedef {{warehouse: string, sku: string, qty?: number, delta?: number, reason?: string,
 *   counted?: number, seen_on_hand?: number, fields?: Record<string, any>}} MutationData
 * @typedef {{seq?: number, id: string, type: string, data: MutationData, hlc: string,
 *   created: number}} Mutation
 * @typedef {{code?: string, message?: string, [key: string]: unknown}} Detail
 * @typedef {{id: string, type: string, data: MutationData, status: string, detail: Detail,
 *   duplicate: boolean, at: number}} Verdict
 * @typedef {{entity: string, key: string, op: string, version: number,
 *   data: Record<string, any> | null}} Change
 * @typedef {{products: {key: string, value: Product},
 *   stock: {key: string, value: StockRow},
 *   queue: {key: number, value: Mutation, indexes: {id: string}},
 *   verdicts: {key: string, value: Verdict, indexes: {at: number}},
 *   meta: {key: string, value: any}}} Schema
 * @typedef {import("./vendor/idb-8.0.4/index.js").IDBPDatabase<Schema>} Database
 * @typedef {{sku: string, on_hand: number, reserved: number, available: number,
 *   pending: number}} StockView
 */

export const DB_NAME = "storekeeper-clerk";
const KEPT_VERDICTS = 200;
const STOCK_TYPES = ["stock.receive", "stock.adjust", "stock.count", "stock.sell"];

/**
 * What a pending stock mutation does to on-hand, as the server would apply it in full.
 * @param {Mutation} m
 */
export function delta(m) {
  const d = m.data;
  if (m.type === "stock.receive") return d.qty ?? 0;
  if (m.type === "stock.sell") return -(d.qty ?? 0);
  if (m.type === "stock.adjust") return d.delta ?? 0;
  if (m.type === "stock.count") return (d.counted ?? 0) - (d.seen_on_hand ?? 0);
  return 0;
}

export class Store {
  /** @param {Database} db */
  constructor(db) {
    this.db = db;
  }

  /** Open (or create) the app's database. */
  static async open() {
    /** @type {Database} */
    const db = await openDB(DB_NAME, 1, {
      upgrade(database) {
        database.createObjectStore("products", { keyPath: "sku" });
        database.createObjectStore("stock", { keyPath: "sku" });
        const queue = database.createObjectStore("queue", { keyPath: "seq", autoIncrement: true });
        queue.createIndex("id", "id", { unique: true });
        const verdicts = database.createObjectStore("verdicts", { keyPath: "id" });
        verdicts.createIndex("at", "at");
        database.createObjectStore("meta");
      },
    });
    return new Store(db);
  }

  /** @param {string} key */
  getMeta(key) {
    return this.db.get("meta", key);
  }

  /** @param {string} key @param {unknown} value */
  async setMeta(key, value) {
    await this.db.put("meta", value, key);
  }

  /** @param {string} key */
  async deleteMeta(key) {
    await this.db.delete("meta", key);
  }

  /** The replica's id, made (a UUID) and stored the first time. */
  async replicaId() {
    const tx = this.db.transaction("meta", "readwrite");
    let id = await tx.store.get("replica_id");
    if (!id) {
      id = crypto.randomUUID();
      await tx.store.put(id, "replica_id");
    }
    await tx.done;
    return /** @type {string} */ (id);
  }

  /** Every product of the server copy, in SKU order. */
  products() {
    return this.db.getAll("products");
  }

  /** @param {string} sku */
  product(sku) {
    return this.db.get("products", sku);
  }

  /** The queue, oldest first. */
  queued() {
    return this.db.getAll("queue");
  }

  /** The newest verdicts first. */
  async verdicts() {
    return (await this.db.getAllFromIndex("verdicts", "at")).reverse();
  }

  /**
   * The SKU's stock as the user should see it: the server copy plus the queued stock changes.
   * @param {string} sku
   * @param {string} warehouse
   * @returns {Promise<StockView>}
   */
  async stock(sku, warehouse) {
    const tx = this.db.transaction(["stock", "queue"]);
    const [row, queue] = await Promise.all([tx.objectStore("stock").get(sku), tx.objectStore("queue").getAll()]);
    await tx.done;
    return view(sku, row, queue, warehouse);
  }

  /**
   * Append a mutation to the queue, stamped by the clock, in one transaction.
   * @param {{type: string, data: MutationData, replicaId: string}} mutation
   * @returns {Promise<Mutation>}
   */
  async enqueue({ type, data, replicaId }) {
    const tx = this.db.transaction(["meta", "queue"], "readwrite");
    const meta = tx.objectStore("meta");
    const now = Date.now();
    const clock = hlc.tick((await meta.get("clock")) ?? hlc.ZERO, now);
    await meta.put(clock, "clock");
    /** @type {Mutation} */
    const mutation = { id: crypto.randomUUID(), type, data, hlc: hlc.stamp(clock, replicaId), created: now };
    mutation.seq = await tx.objectStore("queue").add(mutation);
    await tx.done;
    return mutation;
  }

  /**
   * Store the server's verdicts and drop their mutations from the queue, in one transaction.
   * @param {Verdict[]} verdicts
   */
  async settle(verdicts) {
    const tx = this.db.transaction(["queue", "verdicts"], "readwrite");
    const queue = tx.objectStore("queue");
    const kept = tx.objectStore("verdicts");
    for (const verdict of verdicts) {
      const seq = await queue.index("id").getKey(verdict.id);
      if (seq !== undefined) await queue.delete(seq);
      await kept.put(verdict);
    }
    const all = await kept.index("at").getAllKeys();
    for (const id of all.slice(0, Math.max(0, all.length - KEPT_VERDICTS))) await kept.delete(id);
    await tx.done;
  }

  /**
   * Apply one pulled page and store its cursor and the observed clock, in one transaction.
   * @param {Change[]} changes
   * @param {string} cursor
   */
  async applyPage(changes, cursor) {
    const tx = this.db.transaction(["products", "stock", "meta"], "readwrite");
    const meta = tx.objectStore("meta");
    let clock = (await meta.get("clock")) ?? hlc.ZERO;
    // The rows go to the plain IndexedDB stores, all issued at once and not awaited one by
    // one (each await is a round trip to the browser's database process; a promise per row
    // costs too): IndexedDB runs them in order, and a failed write aborts the transaction,
    // so the page and its cursor are stored together or not at all (`tx.done` rejects).
    const products = unwrap(tx.objectStore("products"));
    const stock = unwrap(tx.objectStore("stock"));
    for (const change of changes) {
      if (change.entity !== "product" && change.entity !== "stock") continue;
      const store = change.entity === "product" ? products : stock;
      if (change.op === "delete" || change.data === null) {
        store.delete(change.key);
      } else {
        if (change.entity === "product") clock = hlc.observe(clock, change.data.hlc);
        store.put({ ...change.data, sku: change.key });
      }
    }
    await Promise.all([meta.put(clock, "clock"), meta.put(cursor, "cursor"), tx.done]);
  }

  /** Forget the server copy and its cursor (the queue and verdicts stay). */
  async clearCopy() {
    const tx = this.db.transaction(["products", "stock", "meta"], "readwrite");
    await Promise.all([tx.objectStore("products").clear(), tx.objectStore("stock").clear(), tx.objectStore("meta").delete("cursor")]);
    await tx.done;
  }
}

/**
 * @param {string} sku
 * @param {StockRow | undefined} row
 * @param {Mutation[]} queue
 * @param {string} warehouse
 * @returns {StockView}
 */
export function view(sku, row, queue, warehouse) {
  const pending = queue.filter(
    (m) => STOCK_TYPES.includes(m.type) && m.data.sku === sku && m.data.warehouse === warehouse,
  );
  const change = pending.reduce((sum, m) => sum + delta(m), 0);
  const onHand = (row?.on_hand ?? 0) + change;
  const reserved = row?.reserved ?? 0;
  return { sku, on_hand: onHand, reserved, available: onHand - reserved, pending: pending.length };
}
