// @ts-check
/**
 * The app's local store in IndexedDB (through the vendored `idb` wrapper): the server copy
 * (changed only by pulls), the `queue` of pending mutations, the server's `verdicts`, and
 * `meta` (cursor, replica id, scope, clock, tokens, signed-in user).
 *
 * The server copy is kept in few, large records, because IndexedDB costs about the same per
 * record whatever its size (one record per row held the first sync of 100k products at 16k
 * rows/s; see docs/clerk-app.md, "How the server copy is stored"):
 * - `product_chunks` / `stock_chunks`: chunks `{n, rows}` of up to {@link CHUNK_ROWS} rows,
 *   each row in one chunk at most. A pulled page's rows that are new to the copy are written
 *   as new chunks. `product_keys` / `stock_keys` hold each chunk's SKUs under the same number
 *   (cheap to read: the index below is built from them).
 * - `products` / `stock`: the overlay, one record per row (keyed by SKU), that wins over the
 *   chunks: a later change to a row already in a chunk, or `{sku, gone: true}` for a deleted
 *   one. When it grows past {@link COMPACT_AT} rows it is folded into the chunks.
 * Each Store keeps an index SKU -> chunk per entity in memory, valid for the `copy_version`
 * in `meta` (every write of the copy bumps it, so a copy changed by another tab is seen and
 * the index read again).
 *
 * Every step that must not be half done is one IndexedDB transaction over the stores it
 * touches: a pulled page (its chunks and overlay rows) with its cursor and the clock; a clock
 * tick with its queue entry; a verdict with the removal of its mutation from the queue
 * (docs/sync.md, "What the client library must do"); a compaction (chunks rewritten, overlay
 * cleared). Schema version 2 added the chunk stores; the version 1 stores `products` and
 * `stock` (one record per row) became the overlay, so an upgraded copy keeps its rows, its
 * cursor and its queue.
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
 * @typedef {{sku: string, gone: true}} Gone a deleted row in the overlay
 * @typedef {{n: number, rows: {sku: string}[]}} Chunk
 * @typedef {{warehouse: string, sku: string, qty?: number, delta?: number, reason?: string,
 *   counted?: number, seen_on_hand?: number, fields?: Record<string, any>}} MutationData
 * @typedef {{seq?: number, id: string, type: string, data: MutationData, hlc: string,
 *   created: number}} Mutation
 * @typedef {{code?: string, message?: string, [key: string]: unknown}} Detail
 * @typedef {{id: string, type: string, data: MutationData, status: string, detail: Detail,
 *   duplicate: boolean, at: number}} Verdict
 * @typedef {{entity: string, key: string, op: string, version: number,
 *   data: Record<string, any> | null}} Change
 * @typedef {{products: {key: string, value: Product | Gone},
 *   stock: {key: string, value: StockRow | Gone},
 *   product_chunks: {key: number, value: Chunk},
 *   stock_chunks: {key: number, value: Chunk},
 *   product_keys: {key: number, value: string[]},
 *   stock_keys: {key: number, value: string[]},
 *   queue: {key: number, value: Mutation, indexes: {id: string}},
 *   verdicts: {key: string, value: Verdict, indexes: {at: number}},
 *   meta: {key: string, value: any}}} Schema
 * @typedef {import("./vendor/idb-8.0.4/index.js").IDBPDatabase<Schema>} Database
 * @typedef {{sku: string, on_hand: number, reserved: number, available: number,
 *   pending: number}} StockView
 */

export const DB_NAME = "storekeeper-clerk";
/** @typedef {"products" | "stock" | "product_chunks" | "stock_chunks" | "product_keys" | "stock_keys"} CopyStore */
/** @type {CopyStore[]} the stores of the server copy */
const COPY_STORES = ["products", "stock", "product_chunks", "stock_chunks", "product_keys", "stock_keys"];
const DB_VERSION = 2;
const KEPT_VERDICTS = 200;
const STOCK_TYPES = ["stock.receive", "stock.adjust", "stock.count", "stock.sell"];
/** Rows per chunk record: one record per page of 1000 rows is what makes the first sync fast. */
export const CHUNK_ROWS = 1000;
/** Overlay rows of one entity beyond which they are folded into the chunks. */
export const COMPACT_AT = 5000;
/**
 * Durability of a pulled page's and a compaction's transaction: committed without waiting for
 * the disk (still all or nothing). A power cut may lose the last pages with their cursor,
 * which are pulled again; the queue, verdicts and a copy's clearing keep the default.
 * @type {IDBTransactionDurability}
 */
const RELAXED = "relaxed";

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

/**
 * A raw IndexedDB request as a promise (the chunk code works on the unwrapped transaction).
 * @template T
 * @param {IDBRequest<T>} request
 * @returns {Promise<T>}
 */
function done(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/** @param {{sku: string}} a @param {{sku: string}} b */
function bySku(a, b) {
  return a.sku < b.sku ? -1 : a.sku > b.sku ? 1 : 0;
}

/** @param {{sku: string} | Gone | undefined} row @returns {row is Gone} */
function isGone(row) {
  return row !== undefined && "gone" in row && row.gone === true;
}

/**
 * One entity of the server copy (products or stock rows): its chunk store, its overlay store
 * and the in-memory index of which chunk holds each SKU.
 */
class Table {
  /**
   * @param {"products" | "stock"} overlay
   * @param {"product_chunks" | "stock_chunks"} chunks
   * @param {"product_keys" | "stock_keys"} keys
   */
  constructor(overlay, chunks, keys) {
    this.overlay = overlay;
    this.chunks = chunks;
    this.keys = keys;
    /** @type {Map<string, number>} SKU -> chunk number */
    this.index = new Map();
    /** @type {Set<string>} the SKUs in the overlay */
    this.shadowed = new Set();
    this.next = 1;
    /** @type {number | undefined} the copy_version the index is valid for */
    this.version = undefined;
  }

  /**
   * Rebuild the index from each chunk's SKUs and the overlay's keys.
   * @param {number[]} numbers @param {string[][]} skus the SKUs of chunk `numbers[i]`
   * @param {IDBValidKey[]} overlayKeys @param {number} version
   */
  fill(numbers, skus, overlayKeys, version) {
    this.index = new Map();
    this.next = 1;
    numbers.forEach((n, i) => {
      for (const sku of skus[i]) this.index.set(sku, n);
      if (n >= this.next) this.next = n + 1;
    });
    this.shadowed = new Set(overlayKeys.map(String));
    this.version = version;
  }

  /**
   * Make the index valid for `version`, reading it in `tx` (which holds this table's stores).
   * @param {IDBTransaction} tx @param {number} version
   */
  async sync(tx, version) {
    if (this.version === version) return;
    const keys = tx.objectStore(this.keys);
    /** @type {[IDBValidKey[], string[][], IDBValidKey[]]} */
    const [numbers, skus, shadowed] = await Promise.all([
      done(keys.getAllKeys()),
      done(keys.getAll()),
      done(tx.objectStore(this.overlay).getAllKeys()),
    ]);
    this.fill(numbers.map(Number), skus, shadowed, version);
  }

  /**
   * Every row of this entity, in SKU order, read in `tx`; the index is refreshed on the way.
   * @param {IDBTransaction} tx @param {number} version
   * @returns {Promise<{sku: string}[]>}
   */
  async all(tx, version) {
    /** @type {[Chunk[], ({sku: string} | Gone)[]]} */
    const [chunks, overlay] = await Promise.all([
      done(tx.objectStore(this.chunks).getAll()),
      done(tx.objectStore(this.overlay).getAll()),
    ]);
    this.fill(
      chunks.map((chunk) => chunk.n),
      chunks.map((chunk) => chunk.rows.map((row) => row.sku)),
      overlay.map((row) => row.sku),
      version,
    );
    // A row is in one chunk at most, and its overlay record (if any) replaces it.
    const shadowed = new Set(overlay.map((row) => row.sku));
    /** @type {{sku: string}[]} */
    const rows = [];
    for (const chunk of chunks) {
      for (const row of chunk.rows) if (!shadowed.has(row.sku)) rows.push(row);
    }
    for (const row of overlay) if (!isGone(row)) rows.push(row);
    return rows.sort(bySku);
  }

  /**
   * One row by SKU, read in `tx`.
   * @param {IDBTransaction} tx @param {number} version @param {string} sku
   * @returns {Promise<{sku: string} | undefined>}
   */
  async get(tx, version, sku) {
    const [shadow] = await Promise.all([done(tx.objectStore(this.overlay).get(sku)), this.sync(tx, version)]);
    if (shadow !== undefined) return isGone(shadow) ? undefined : shadow;
    const n = this.index.get(sku);
    if (n === undefined) return undefined;
    /** @type {Chunk | undefined} */
    const chunk = await done(tx.objectStore(this.chunks).get(n));
    return chunk?.rows.find((row) => row.sku === sku);
  }

  /**
   * Write this entity's changes of one page in `tx` (the index must be valid): rows new to
   * the copy as new chunks, the others to the overlay. Requests are issued, not awaited.
   * @param {IDBTransaction} tx @param {Change[]} changes
   */
  write(tx, changes) {
    const overlay = tx.objectStore(this.overlay);
    /** @type {Map<string, {sku: string}>} */
    const fresh = new Map();
    for (const change of changes) {
      const sku = change.key;
      const data = change.op === "delete" ? null : change.data;
      // The server's data carries the SKU: stored as it is (a copy only when it does not).
      const row = data === null ? null : data.sku === sku ? /** @type {{sku: string}} */ (data) : { ...data, sku };
      if (this.index.has(sku) || this.shadowed.has(sku)) {
        overlay.put(row ?? { sku, gone: true });
        this.shadowed.add(sku);
      } else if (row) {
        fresh.set(sku, row);
      } else {
        fresh.delete(sku);
      }
    }
    this.append(tx, [...fresh.values()]);
  }

  /**
   * Store rows that are in no chunk as new chunks.
   * @param {IDBTransaction} tx @param {{sku: string}[]} rows
   */
  append(tx, rows) {
    for (let at = 0; at < rows.length; at += CHUNK_ROWS) {
      this.put(tx, this.next++, rows.slice(at, at + CHUNK_ROWS));
    }
  }

  /**
   * Write chunk `n` (and its SKUs) in `tx`; an empty one is deleted.
   * @param {IDBTransaction} tx @param {number} n @param {{sku: string}[]} rows
   */
  put(tx, n, rows) {
    if (!rows.length) {
      tx.objectStore(this.chunks).delete(n);
      tx.objectStore(this.keys).delete(n);
      return;
    }
    const skus = rows.map((row) => row.sku);
    tx.objectStore(this.chunks).put({ n, rows }, n);
    tx.objectStore(this.keys).put(skus, n);
    for (const sku of skus) this.index.set(sku, n);
  }

  /**
   * Fold the overlay into the chunks in `tx`: each chunk that holds an overlay row is
   * rewritten (emptied ones deleted), rows in no chunk go to new chunks, the overlay is cleared.
   * @param {IDBTransaction} tx
   */
  async compact(tx) {
    const overlay = tx.objectStore(this.overlay);
    const chunks = tx.objectStore(this.chunks);
    /** @type {({sku: string} | Gone)[]} */
    const rows = await done(overlay.getAll());
    /** @type {Map<number, Map<string, {sku: string} | Gone>>} */
    const touched = new Map();
    /** @type {{sku: string}[]} */
    const loose = [];
    for (const row of rows) {
      const n = this.index.get(row.sku);
      if (n === undefined) {
        if (!isGone(row)) loose.push(row);
        continue;
      }
      if (!touched.has(n)) touched.set(n, new Map());
      touched.get(n)?.set(row.sku, row);
    }
    /** @type {(Chunk | undefined)[]} */
    const old = await Promise.all([...touched.keys()].map((n) => done(chunks.get(n))));
    for (const chunk of old) {
      if (!chunk) continue;
      const changed = touched.get(chunk.n) ?? new Map();
      /** @type {{sku: string}[]} */
      const kept = [];
      for (const row of chunk.rows) {
        const shadow = changed.get(row.sku) ?? row;
        if (isGone(shadow)) this.index.delete(row.sku);
        else kept.push(shadow);
      }
      this.put(tx, chunk.n, kept);
    }
    this.append(tx, loose);
    overlay.clear();
    this.shadowed.clear();
  }
}

export class Store {
  /** @param {Database} db */
  constructor(db) {
    this.db = db;
    this.tables = {
      product: new Table("products", "product_chunks", "product_keys"),
      stock: new Table("stock", "stock_chunks", "stock_keys"),
    };
    /** Overlay rows of one entity beyond which a pulled page is followed by a compaction. */
    this.compactAt = COMPACT_AT;
  }

  /** Open (or create, or upgrade) the app's database. */
  static async open() {
    /** @type {Database} */
    const db = await openDB(DB_NAME, DB_VERSION, {
      upgrade(database, oldVersion) {
        if (oldVersion < 1) {
          database.createObjectStore("products", { keyPath: "sku" });
          database.createObjectStore("stock", { keyPath: "sku" });
          const queue = database.createObjectStore("queue", { keyPath: "seq", autoIncrement: true });
          queue.createIndex("id", "id", { unique: true });
          const verdicts = database.createObjectStore("verdicts", { keyPath: "id" });
          verdicts.createIndex("at", "at");
          database.createObjectStore("meta");
        }
        if (oldVersion < 2) {
          // Version 1's one-record-per-row `products` and `stock` are now the overlay: their
          // rows stay valid (they win over the empty chunks) and are folded into chunks later.
          database.createObjectStore("product_chunks");
          database.createObjectStore("stock_chunks");
          database.createObjectStore("product_keys");
          database.createObjectStore("stock_keys");
        }
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

  /**
   * A raw transaction over `stores` and `meta`, with the copy's version read in it.
   * @param {(CopyStore | "queue")[]} stores
   * @param {IDBTransactionMode} mode
   * @param {IDBTransactionDurability} [durability]
   */
  async copyTransaction(stores, mode, durability = "default") {
    const tx = unwrap(this.db.transaction([...stores, "meta"], mode, { durability }));
    const version = Number((await done(tx.objectStore("meta").get("copy_version"))) ?? 0);
    return { tx, version };
  }

  /**
   * Every product of the server copy, in SKU order.
   * @returns {Promise<Product[]>}
   */
  async products() {
    const { tx, version } = await this.copyTransaction(["products", "product_chunks", "product_keys"], "readonly");
    return /** @type {Product[]} */ (await this.tables.product.all(tx, version));
  }

  /**
   * @param {string} sku
   * @returns {Promise<Product | undefined>}
   */
  async product(sku) {
    const { tx, version } = await this.copyTransaction(["products", "product_chunks", "product_keys"], "readonly");
    return /** @type {Product | undefined} */ (await this.tables.product.get(tx, version, sku));
  }

  /**
   * Every stock row of the server copy, in SKU order.
   * @returns {Promise<StockRow[]>}
   */
  async stockRows() {
    const { tx, version } = await this.copyTransaction(["stock", "stock_chunks", "stock_keys"], "readonly");
    return /** @type {StockRow[]} */ (await this.tables.stock.all(tx, version));
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
    const { tx, version } = await this.copyTransaction(["stock", "stock_chunks", "stock_keys", "queue"], "readonly");
    /** @type {[{sku: string} | undefined, Mutation[]]} */
    const [row, queue] = await Promise.all([this.tables.stock.get(tx, version, sku), done(tx.objectStore("queue").getAll())]);
    return view(sku, /** @type {StockRow | undefined} */ (row), queue, warehouse);
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
   * Run `write` on the copy's stores in one read-write transaction with the indexes made
   * valid first and the copy's version bumped; an index is read again after a failure.
   * @param {(tx: IDBTransaction, meta: IDBObjectStore) => void | Promise<void>} write
   * @param {IDBTransactionDurability} [durability]
   */
  async changeCopy(write, durability = "default") {
    const { tx, version } = await this.copyTransaction(COPY_STORES, "readwrite", durability);
    const tables = [this.tables.product, this.tables.stock];
    const settled = new Promise((resolve, reject) => {
      tx.oncomplete = () => resolve(undefined);
      tx.onabort = () => reject(tx.error ?? new DOMException("transaction aborted", "AbortError"));
    });
    try {
      await Promise.all(tables.map((table) => table.sync(tx, version)));
      const meta = tx.objectStore("meta");
      await write(tx, meta);
      meta.put(version + 1, "copy_version");
      await settled;
      for (const table of tables) table.version = version + 1;
    } catch (error) {
      for (const table of tables) table.version = undefined;
      if (!tx.error) {
        try {
          tx.abort();
        } catch {
          // already finished
        }
      }
      await settled.catch(() => {});
      throw error;
    }
  }

  /**
   * Apply one pulled page and store its cursor and the observed clock, in one transaction.
   * @param {Change[]} changes
   * @param {string} cursor
   */
  async applyPage(changes, cursor) {
    await this.changeCopy(async (tx, meta) => {
      let clock = (await done(meta.get("clock"))) ?? hlc.ZERO;
      /** @type {Change[]} */
      const products = [];
      /** @type {Change[]} */
      const stock = [];
      for (const change of changes) {
        if (change.entity === "product") {
          products.push(change);
          if (change.op !== "delete" && change.data) clock = hlc.observe(clock, change.data.hlc);
        } else if (change.entity === "stock") {
          stock.push(change);
        }
      }
      // All requests are issued at once and not awaited one by one (each await is a round
      // trip to the browser's database process): IndexedDB runs them in order, and a failed
      // write aborts the transaction, so the page and its cursor are stored together or not.
      this.tables.product.write(tx, products);
      this.tables.stock.write(tx, stock);
      meta.put(clock, "clock");
      meta.put(cursor, "cursor");
    }, RELAXED);
    if (this.tables.product.shadowed.size > this.compactAt || this.tables.stock.shadowed.size > this.compactAt) {
      await this.compact();
    }
  }

  /** Fold the overlay into the chunks (the copy's content is unchanged), in one transaction. */
  async compact() {
    await this.changeCopy(async (tx) => {
      await Promise.all([this.tables.product.compact(tx), this.tables.stock.compact(tx)]);
    }, RELAXED);
  }

  /** Forget the server copy and its cursor (the queue and verdicts stay). */
  async clearCopy() {
    await this.changeCopy((tx, meta) => {
      for (const name of COPY_STORES) tx.objectStore(name).clear();
      meta.delete("cursor");
      for (const table of Object.values(this.tables)) table.fill([], [], [], -1);
    });
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
