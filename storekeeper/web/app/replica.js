// @ts-check
/**
 * The browser replica: the protocol of docs/sync.md ("What the client library must do"), as
 * storekeeper/client/replica.py does it for Python devices, over the IndexedDB store.
 *
 * - Mutations get a UUID and an HLC stamp when made, in the transaction that queues them.
 * - `sync()` pushes what was queued when it began (batches of 100), then pulls pages of 5000
 *   (the server's maximum) until `has_more` is false, each page stored with its cursor in one
 *   transaction (the next page is asked for as soon as a page's cursor is read from the end of
 *   its text, so the server makes it while this one is parsed and stored).
 * - A mutation leaves the queue only in the transaction that stores its verdict; a
 *   `duplicate` is stored as the first verdict it carries.
 * - `invalid_cursor` / `resync_required`: the server copy is cleared (the queue kept) and the
 *   pull starts over, once per sync.
 * - A 401 renews the access token with the refresh token once and repeats the request; if the
 *   refresh is refused the session has ended (`SessionEnded`), and the queue stays.
 * @module
 */
import { Store } from "./store.js";

/** @typedef {import("./store.js").Mutation} Mutation */
/** @typedef {import("./store.js").Verdict} Verdict */
/** @typedef {import("./store.js").Change} Change */
/** @typedef {import("./store.js").Product} Product */
/** @typedef {{name?: string, price_cents?: number}} ProductEdit */
/** @typedef {{access_token: string, refresh_token: string}} Tokens */
/** @typedef {{email: string, role: string, warehouses: string[]}} User */
/** @typedef {{code: string, name: string}} Warehouse */
/** @typedef {{pushed: number, pulled: number, resynced: boolean, verdicts: Verdict[]}} Summary */

export const API = "/api/v1";
export const PUSH_BATCH = 100;
export const PAGE_SIZE = 5000;
const RESYNC_CODES = ["invalid_cursor", "resync_required"];
const ADJUST_REASONS = ["damage", "correction"];
/** The fields a replica may edit (docs/sync.md, `product.update`); the app edits name and price. */
const EDITABLE_FIELDS = ["name", "price_cents", "attributes", "min_temp_c", "max_temp_c"];
/** Roles the server takes product edits from, online or offline. */
const EDITORS = ["manager", "admin"];

/** The server cannot be reached: everything stays queued. */
export class Offline extends Error {}

/** The sign-in ended (refresh refused): sign in again; the queue is kept. */
export class SessionEnded extends Error {}

/** Another account's changes wait in this device's queue: signing in would push them as yours. */
export class QueueOfAnother extends Error {
  /** @param {string} owner @param {number} waiting */
  constructor(owner, waiting) {
    super(`${waiting} change(s) made by ${owner} are waiting to sync on this device`);
    this.owner = owner;
    this.waiting = waiting;
  }
}

/** The server refused a request. */
export class SyncError extends Error {
  /** @param {string} message @param {number} status @param {string | null} code */
  constructor(message, status, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/**
 * Run `work` holding a lock shared by every tab of the app (so two tabs never push the same
 * queue or spend one refresh token twice); without Web Locks, just run it.
 * @template T
 * @param {string} name
 * @param {() => Promise<T>} work
 * @returns {Promise<T>}
 */
function locked(name, work) {
  if (navigator.locks) return /** @type {Promise<T>} */ (navigator.locks.request(name, work));
  return work();
}

/**
 * A push result as a verdict: a `duplicate` stands for the first verdict it carries.
 * @param {{id: string, status: string, detail: any}} result
 * @param {Mutation | undefined} mutation
 * @returns {Verdict}
 */
export function effective(result, mutation) {
  let { status, detail } = result;
  const original = status === "duplicate" ? detail?.original : null;
  if (original && typeof original === "object" && "status" in original) {
    status = original.status;
    detail = original.detail ?? detail;
  }
  return {
    id: String(result.id),
    type: mutation?.type ?? "",
    data: mutation?.data ?? { warehouse: "", sku: "" },
    status,
    detail: detail ?? {},
    duplicate: result.status === "duplicate",
    at: Date.now(),
  };
}

export class Replica {
  /** @param {Store} store @param {string} replicaId */
  constructor(store, replicaId) {
    this.store = store;
    this.replicaId = replicaId;
    /** @type {Promise<Summary> | null} */
    this.running = null;
  }

  static async open() {
    const store = await Store.open();
    return new Replica(store, await store.replicaId());
  }

  /** @returns {Promise<string | undefined>} the warehouse of the scope, if one was chosen */
  async warehouse() {
    const scope = await this.store.getMeta("scope");
    return scope ? String(scope).replace(/^warehouse:/, "") : undefined;
  }

  /** @returns {Promise<User | undefined>} */
  user() {
    return this.store.getMeta("user");
  }

  /** Whether the app holds tokens (it may still find them expired). */
  async signedIn() {
    return Boolean(await this.store.getMeta("auth"));
  }

  // --- auth ------------------------------------------------------------------------------------

  /**
   * Trade e-mail, password and (with two-factor on) a one-time code for tokens, and remember
   * who signed in. The queue is pushed under whoever is signed in, so when it holds changes
   * made by another account this refuses with {@link QueueOfAnother} unless `takeOver`.
   * @param {string} email @param {string} password @param {string} otp
   * @param {boolean} [takeOver] push the other account's waiting changes under this one
   */
  async signIn(email, password, otp, takeOver = false) {
    const owner = /** @type {string | undefined} */ (await this.store.getMeta("queue_owner"));
    const waiting = (await this.store.queued()).length;
    if (owner && waiting && owner.toLowerCase() !== email.toLowerCase() && !takeOver) {
      throw new QueueOfAnother(owner, waiting);
    }
    const form = new URLSearchParams({ username: email, password });
    if (otp) form.set("otp", otp);
    const response = await send(`${API}/auth/token`, { method: "POST", body: form });
    if (!response.ok) throw await refusal(response, "sign-in");
    const tokens = await response.json();
    await this.store.setMeta("auth", pair(tokens));
    await this.store.deleteMeta("session_ended");
    /** @type {User} */
    const me = await this.request("GET", "/me");
    await this.store.setMeta("user", { email: me.email, role: me.role, warehouses: me.warehouses });
    await this.store.setMeta("queue_owner", me.email);
    return me;
  }

  /** Forget the tokens (the server copy and the queue stay on the device). */
  async signOut() {
    const auth = await this.store.getMeta("auth");
    await this.store.deleteMeta("auth");
    await this.store.deleteMeta("user");
    if (auth) {
      fetch(`${API}/auth/logout`, { method: "POST", headers: { Authorization: `Bearer ${auth.access_token}` } }).catch(() => {});
    }
  }

  /**
   * The warehouses this user may sync: every one for staff, a clerk's assigned ones.
   * @returns {Promise<Warehouse[]>}
   */
  async warehouses() {
    /** @type {Warehouse[]} */
    const all = await this.request("GET", "/warehouses");
    const user = await this.user();
    if (user?.role === "clerk") return all.filter((w) => user.warehouses.includes(w.code));
    return all;
  }

  /**
   * Choose the scope; a different warehouse than before drops the server copy and cursor.
   * @param {string} code
   */
  async useWarehouse(code) {
    const scope = `warehouse:${code}`;
    if ((await this.store.getMeta("scope")) !== scope) {
      await this.store.clearCopy();
      await this.store.setMeta("scope", scope);
    }
  }

  /**
   * One API request with the stored access token; a 401 refreshes once and repeats.
   * @param {string} method
   * @param {string} path under /api/v1
   * @param {unknown} [json]
   * @returns {Promise<any>}
   */
  async request(method, path, json) {
    return (await this.respond(method, path, json)).json();
  }

  /**
   * {@link request}'s response, unread: 2xx only (a refusal is thrown as `SyncError`).
   * @param {string} method
   * @param {string} path under /api/v1
   * @param {unknown} [json]
   * @returns {Promise<Response>}
   */
  async respond(method, path, json) {
    const attempt = async () => {
      const auth = await this.store.getMeta("auth");
      if (!auth) throw new SessionEnded("signed out: sign in again");
      /** @type {Record<string, string>} */
      const headers = { Authorization: `Bearer ${auth.access_token}` };
      if (json !== undefined) headers["Content-Type"] = "application/json";
      const body = json === undefined ? undefined : JSON.stringify(json);
      return { auth, response: await send(`${API}${path}`, { method, headers, body }) };
    };
    let { auth, response } = await attempt();
    if (response.status === 401) {
      await this.refresh(auth);
      ({ response } = await attempt());
    }
    if (!response.ok) throw await refusal(response, `${method} ${path}`);
    return response;
  }

  /**
   * Renew the tokens with the refresh token, unless another tab already did.
   * @param {Tokens} used the tokens of the request answered 401
   */
  async refresh(used) {
    await locked("storekeeper-refresh", async () => {
      const current = await this.store.getMeta("auth");
      if (current && current.refresh_token !== used.refresh_token) return; // renewed meanwhile
      const response = await send(`${API}/auth/refresh`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refresh_token: used.refresh_token }),
      });
      if (response.status === 401 || response.status === 422) {
        await this.store.deleteMeta("auth");
        await this.store.setMeta("session_ended", true);
        throw new SessionEnded("session ended: sign in again");
      }
      if (!response.ok) throw await refusal(response, "refresh");
      await this.store.setMeta("auth", pair(await response.json()));
    });
  }

  // --- writes (offline) ------------------------------------------------------------------------

  /**
   * @param {string} type
   * @param {string} sku
   * @param {Record<string, unknown>} extra
   */
  async queue(type, sku, extra) {
    const warehouse = await this.warehouse();
    if (!warehouse) throw new Error("choose a warehouse first");
    return this.store.enqueue({ type, data: { warehouse, sku, ...extra }, replicaId: this.replicaId });
  }

  /** @param {string} sku @param {number} qty */
  sell(sku, qty) {
    return this.queue("stock.sell", sku, { qty: checked("quantity", qty, 1) });
  }

  /** @param {string} sku @param {number} qty */
  receive(sku, qty) {
    return this.queue("stock.receive", sku, { qty: checked("quantity", qty, 1) });
  }

  /**
   * A count line: `seenOnHand` is the on-hand the app showed when the shelf was counted
   * (negative, after pending sales beyond stock, is sent as 0, as the Python client does).
   * @param {string} sku @param {number} counted @param {number} seenOnHand
   */
  count(sku, counted, seenOnHand) {
    return this.queue("stock.count", sku, {
      counted: checked("counted quantity", counted, 0),
      seen_on_hand: Math.max(0, seenOnHand),
    });
  }

  /**
   * A write-off or correction of `delta` units (not 0): `reason` is `damage` or `correction`.
   * @param {string} sku @param {number} delta @param {string} reason
   */
  adjust(sku, delta, reason) {
    checked("change", Math.abs(delta), 1);
    if (!ADJUST_REASONS.includes(reason)) throw new RangeError("reason must be damage or correction");
    return this.queue("stock.adjust", sku, { delta, reason });
  }

  /**
   * Edit product fields offline, as `Replica.update_product` in Python: last writer wins per
   * field by the mutation's HLC stamp. The server takes it from managers and admins only
   * (`rejected`, `forbidden`, for anyone else); an edit that loses to a later one answers
   * `conflict`, `stale_edit`, and the next pull brings the winner.
   * @param {string} sku @param {ProductEdit} fields
   */
  editProduct(sku, fields) {
    const names = Object.keys(fields);
    if (!names.length) throw new RangeError("change the name or the price first");
    const unknown = names.filter((n) => !EDITABLE_FIELDS.includes(n));
    if (unknown.length) throw new RangeError(`not editable offline: ${unknown.join(", ")}`);
    if (fields.name !== undefined && (!fields.name.trim() || fields.name.length > 200)) {
      throw new RangeError("the name must be 1 to 200 characters");
    }
    if (fields.price_cents !== undefined) checked("price in cents", fields.price_cents, 0, 1e12);
    return this.queue("product.update", sku, { fields: { ...fields } });
  }

  /**
   * The product as the user should see it: the server copy with the pending edits of its SKU
   * applied in queue order (Python: `Replica.product`).
   * @param {string} sku
   * @returns {Promise<Product | undefined>}
   */
  async product(sku) {
    const row = await this.store.product(sku);
    return row && edited(row, await this.store.queued());
  }

  /** Whether the signed-in account may edit products (the server refuses anyone else). */
  async mayEditProducts() {
    return EDITORS.includes((await this.user())?.role ?? "");
  }

  // --- sync ------------------------------------------------------------------------------------

  /**
   * Push the queue, then pull until up to date. One sync at a time (in this tab and across
   * tabs); a call while one runs gets that one's result.
   * @param {(pulled: number) => void} [onProgress]
   * @returns {Promise<Summary>}
   */
  sync(onProgress) {
    if (!this.running) {
      this.running = locked("storekeeper-sync", () => this.syncNow(onProgress)).finally(() => {
        this.running = null;
      });
    }
    return this.running;
  }

  /** @param {(pulled: number) => void} [onProgress] */
  async syncNow(onProgress) {
    /** @type {Summary} */
    const summary = { pushed: 0, pulled: 0, resynced: false, verdicts: [] };
    await this.push(summary);
    await this.pull(summary, onProgress);
    await this.store.setMeta("last_synced", Date.now());
    return summary;
  }

  /** @param {Summary} summary */
  async push(summary) {
    const queued = await this.store.queued();
    const upTo = queued.length ? queued[queued.length - 1].seq ?? 0 : 0;
    for (;;) {
      const batch = (await this.store.queued()).filter((m) => (m.seq ?? 0) <= upTo).slice(0, PUSH_BATCH);
      if (!batch.length) return;
      const answer = await this.request("POST", "/sync/push", {
        replica_id: this.replicaId,
        mutations: batch.map((m) => ({ id: m.id, type: m.type, data: m.data, hlc: m.hlc })),
      });
      const byId = new Map(batch.map((m) => [m.id, m]));
      /** @type {Verdict[]} */
      const verdicts = answer.results.map((/** @type {any} */ r) => effective(r, byId.get(String(r.id))));
      await this.store.settle(verdicts);
      summary.pushed += verdicts.length;
      summary.verdicts.push(...verdicts);
      if (verdicts.length < batch.length) {
        throw new SyncError("the server did not answer every mutation pushed", 200, null);
      }
    }
  }

  /**
   * @param {Summary} summary
   * @param {(pulled: number) => void} [onProgress]
   */
  async pull(summary, onProgress) {
    const scope = await this.store.getMeta("scope");
    if (!scope) return;
    /** @param {string | undefined} since @returns {Promise<string>} the page's JSON text */
    const ask = (since) => {
      const params = new URLSearchParams({ scope, limit: String(PAGE_SIZE) });
      if (since) params.set("since", since);
      const answer = this.respond("GET", `/sync/pull?${params}`).then((response) => response.text());
      answer.catch(() => {}); // handled where it is awaited, maybe after a page is stored
      return answer;
    };
    let next = ask(await this.store.getMeta("cursor"));
    for (;;) {
      /** @type {string} */
      let text;
      try {
        text = await next;
      } catch (error) {
        if (error instanceof SyncError && RESYNC_CODES.includes(error.code ?? "") && !summary.resynced) {
          await this.store.clearCopy();
          summary.resynced = true;
          next = ask(undefined);
          continue;
        }
        throw error;
      }
      // The next page is asked for as soon as this one's cursor is known: read from the end of
      // the text before the whole page is parsed, so the server makes the next page while this
      // one is parsed and stored. A page is stored only after the one before it, with its cursor.
      const head = tail(text);
      if (head?.has_more) next = ask(head.cursor);
      /** @type {{changes: Change[], cursor: string, has_more: boolean}} */
      const page = JSON.parse(text);
      if (head && (head.cursor !== page.cursor || head.has_more !== page.has_more)) {
        throw new SyncError("a pull page's end was misread", 200, null);
      }
      if (!head && page.has_more) next = ask(page.cursor);
      await this.store.applyPage(page.changes, page.cursor);
      summary.pulled += page.changes.length;
      onProgress?.(summary.pulled);
      if (!page.has_more) return;
    }
  }
}

/**
 * The `cursor` and `has_more` of a pull page's JSON text, read from its end (the server writes
 * them after `changes`), without parsing the changes; null when the text does not end so.
 * A key "cursor" inside the changes cannot be mistaken for it: the text after it would not be
 * one whole JSON object.
 * @param {string} text
 * @returns {{cursor: string, has_more: boolean} | null}
 */
export function tail(text) {
  const at = text.lastIndexOf('"cursor":');
  if (at < 1 || text[at - 1] !== ",") return null;
  try {
    const head = JSON.parse(`{${text.slice(at)}`);
    if (typeof head?.cursor === "string" && typeof head.has_more === "boolean" && Object.keys(head).length === 2) return head;
  } catch {
    // not the page's last fields: parse the whole page first
  }
  return null;
}

/**
 * @param {string} name @param {number} value @param {number} low @param {number} [high]
 */
function checked(name, value, low, high = 1e9) {
  if (!Number.isInteger(value) || value < low || value > high) {
    throw new RangeError(`${name} must be a whole number from ${low} to ${high}`);
  }
  return value;
}

/**
 * A product with the pending `product.update` edits of its SKU applied in queue order.
 * @param {Product} product @param {Mutation[]} queue
 * @returns {Product}
 */
export function edited(product, queue) {
  let shown = product;
  for (const m of queue) {
    if (m.type === "product.update" && m.data.sku === product.sku && m.data.fields) {
      shown = { ...shown, ...m.data.fields };
    }
  }
  return shown;
}

/** @param {any} tokens @returns {Tokens} */
function pair(tokens) {
  return { access_token: String(tokens.access_token), refresh_token: String(tokens.refresh_token) };
}

/**
 * fetch, with a network failure as `Offline`.
 * @param {string} url @param {RequestInit} init
 */
async function send(url, init) {
  try {
    return await fetch(url, { ...init, cache: "no-store" });
  } catch (error) {
    throw new Offline(`server unreachable: ${error}`);
  }
}

/**
 * The error of a refused request: `{detail, code}` from the API's error body.
 * @param {Response} response @param {string} what
 */
async function refusal(response, what) {
  let message = `${what}: ${response.status}`;
  /** @type {string | null} */
  let code = null;
  try {
    const body = await response.json();
    code = body.code ?? null;
    message = typeof body.detail === "string" ? body.detail : message;
  } catch {
    // not JSON: keep the status line
  }
  return new SyncError(message, response.status, code);
}
