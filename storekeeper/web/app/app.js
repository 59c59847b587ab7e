// @ts-check
/**
 * The clerk app's screens: sign in, choose a warehouse, the first pull with its progress, then
 * product lookup, sell / receive / adjust, product edits (managers), a count session, the
 * pending queue, the server's verdicts, the open sync exceptions, and the banner (online or
 * offline, last synced, session ended). Manual: docs/clerk-app.md.
 * @module
 */
import * as exceptions from "./exceptions.js";
import { Offline, QueueOfAnother, Replica, SessionEnded, edited } from "./replica.js";
import { Scanner, cameraAvailable } from "./scan.js";
import { delta } from "./store.js";

/** @typedef {import("./store.js").Product} Product */
/** @typedef {import("./store.js").Mutation} Mutation */
/** @typedef {import("./store.js").Verdict} Verdict */
/** @typedef {{sku: string, counted: number, seen: number}} CountLine */

const SYNC_EVERY_MS = 60_000;
/** After a failed sync while the device has a network (the server is down or unreachable), the
 * next try comes after this, doubling up to SYNC_EVERY_MS: no `online` event will say when the
 * server is back. */
const RETRY_FIRST_MS = 5_000;
const MAX_MATCHES = 20;

/** @param {string} id @returns {HTMLElement} */
function $(id) {
  const found = document.getElementById(id);
  if (!found) throw new Error(`#${id} is missing`);
  return found;
}
/** @param {string} id */
const input = (id) => /** @type {HTMLInputElement} */ ($(id));

/** @type {Replica} */
let replica;
/** @type {Product[]} */
let catalog = [];
/** @type {Product | null} */
let chosen = null;
/** How many products have been chosen: the latest choice alone writes the product panel. */
let choices = 0;
/** The SKU whose values the edit form holds, and the values it was filled with: a refresh
 * (after a sync) updates the form only where nothing was typed over them. */
let editing = "";
let filledWith = { name: "", price: "" };
let syncError = "";
let syncing = false;
/** Milliseconds until the next try while the server cannot be reached (0: it can). */
let retryMs = 0;
let retryTimer = 0;

/** @param {"signin" | "pick" | "pulling" | "work" | "exceptions"} screen */
function show(screen) {
  for (const id of ["signin", "pick", "pulling", "work", "exceptions"]) $(id).hidden = id !== screen;
}

/** @param {number | undefined} ms */
function when(ms) {
  return ms ? new Date(ms).toLocaleString() : "never";
}

async function banner() {
  const last = await replica.store.getMeta("last_synced");
  const text = [];
  if (syncing) text.push("Syncing…");
  else if (navigator.onLine && retryMs) {
    text.push(`Server unreachable: your changes are kept on this device; next try within ${retryMs / 1000} s`);
  } else if (navigator.onLine) text.push("Online");
  else text.push("Offline: your changes are kept on this device");
  text.push(`last synced ${when(last)}`);
  if (syncError) text.push(syncError);
  $("banner").textContent = text.join(" · ");
  $("banner").classList.toggle("offline", !navigator.onLine || retryMs > 0);
  $("ended").hidden = !(await replica.store.getMeta("session_ended"));
}

/** @param {Mutation | Verdict} m */
function describe(m) {
  const d = m.data;
  if (m.type === "stock.sell") return `Sell ${d.qty} of ${d.sku}`;
  if (m.type === "stock.receive") return `Receive ${d.qty} of ${d.sku}`;
  if (m.type === "stock.count") return `Count ${d.sku}: ${d.counted} (saw ${d.seen_on_hand}, ${signed(delta(/** @type {Mutation} */ (m)))})`;
  if (m.type === "stock.adjust") return `Adjust ${d.sku} ${signed(d.delta ?? 0)} (${d.reason})`;
  if (m.type === "product.update") return `Edit ${d.sku}: ${fieldsText(d.fields ?? {})}`;
  return `${m.type} ${d.sku}`;
}

/** @param {Record<string, any>} fields */
function fieldsText(fields) {
  const parts = [];
  if (fields.name !== undefined) parts.push(`name “${fields.name}”`);
  if (fields.price_cents !== undefined) parts.push(`price ${money(fields.price_cents)}`);
  return parts.join(", ");
}

/** @param {number} cents @param {string} [currency] */
function money(cents, currency = "") {
  const text = `${Math.trunc(cents / 100)}.${String(cents % 100).padStart(2, "0")}`;
  return currency ? `${text} ${currency}` : text;
}

/** "4.50", "4,5" or "4" as cents; null if it is no price. @param {string} text */
function cents(text) {
  const match = /^(\d{1,10})(?:[.,](\d{1,2}))?$/.exec(text.trim());
  return match ? Number(match[1]) * 100 + Number((match[2] ?? "0").padEnd(2, "0")) : null;
}

/** @param {Verdict} v */
function verdictLabel(v) {
  const lost = v.type === "product.update" && v.status === "conflict" ? " (edit lost)" : "";
  return `${v.status}${lost}${v.duplicate ? " (duplicate)" : ""}`;
}

/** @param {number} n */
function signed(n) {
  return n > 0 ? `+${n}` : String(n);
}

/**
 * @param {HTMLElement} list
 * @param {string[]} lines
 * @param {string} empty
 * @param {(li: HTMLLIElement, index: number) => void} [decorate]
 */
function fill(list, lines, empty, decorate) {
  list.replaceChildren(
    ...(lines.length ? lines : [empty]).map((text, index) => {
      const li = document.createElement("li");
      li.textContent = text;
      if (lines.length && decorate) decorate(li, index);
      return li;
    }),
  );
}

async function refreshLists() {
  const queue = await replica.store.queued();
  $("pending-count").textContent = `(${queue.length})`;
  fill($("pending"), queue.map(describe), "Nothing waiting.");
  const verdicts = await replica.store.verdicts();
  fill(
    $("verdicts"),
    verdicts.slice(0, 30).map((v) => {
      return `${verdictLabel(v)}: ${describe(v)}${v.detail.message ? ` — ${v.detail.message}` : ""}`;
    }),
    "Nothing synced yet.",
    (li, i) => li.classList.add(`status-${verdicts[i].status}`),
  );
  await showCountLines();
  if (chosen) await choose(chosen);
  await showExceptions();
  await banner();
}

/** The catalog for lookups: the server copy with the pending edits applied. */
async function loadCatalog() {
  const queue = await replica.store.queued();
  catalog = (await replica.store.products()).map((p) => edited(p, queue));
}

// --- sync --------------------------------------------------------------------------------------

/** @param {boolean} [loud] show the progress screen (first pull) */
async function sync(loud = false) {
  if (!(await replica.warehouse()) || !(await replica.signedIn())) return;
  syncing = true;
  syncError = "";
  await banner();
  try {
    const summary = await replica.sync((pulled) => {
      if (loud) $("pull-count").textContent = `${pulled} rows`;
    });
    await loadCatalog();
    if (await exceptions.due(replica, summary.pushed)) {
      // Not part of the sync: a list that cannot be fetched now keeps its last copy.
      await exceptions.fetchOpen(replica).catch(() => {});
    }
    if (summary.pushed) $("banner").dataset.pushed = String(summary.pushed);
    retryMs = 0;
    window.clearTimeout(retryTimer);
  } catch (error) {
    if (error instanceof Offline) {
      syncError = "";
      if (navigator.onLine) retryLater();
    }
    else if (error instanceof SessionEnded) {
      syncError = "";
      show("signin"); // the banner says why; the queue stays and is pushed after signing in
    }
    else syncError = `Sync failed: ${error instanceof Error ? error.message : error}`;
  } finally {
    syncing = false;
    $("sync-now").removeAttribute("disabled");
    await refreshLists();
  }
}

/** Try again soon, then less and less often, while the server cannot be reached. */
function retryLater() {
  retryMs = retryMs ? Math.min(retryMs * 2, SYNC_EVERY_MS) : RETRY_FIRST_MS;
  window.clearTimeout(retryTimer);
  retryTimer = window.setTimeout(() => {
    if (!syncing) void sync();
  }, retryMs);
}

// --- screens -----------------------------------------------------------------------------------

async function start() {
  await banner();
  if (!(await replica.signedIn())) {
    show("signin");
    return;
  }
  if (!(await replica.warehouse())) {
    await pick();
    return;
  }
  await work();
  if (navigator.onLine) await sync();
}

async function pick() {
  show("pick");
  $("pick-error").textContent = "";
  const select = /** @type {HTMLSelectElement} */ ($("warehouse"));
  try {
    const warehouses = await replica.warehouses();
    select.replaceChildren(
      ...warehouses.map((w) => {
        const option = document.createElement("option");
        option.value = w.code;
        option.textContent = `${w.code} · ${w.name}`;
        return option;
      }),
    );
    if (!warehouses.length) $("pick-error").textContent = "You are not assigned to any warehouse.";
  } catch (error) {
    $("pick-error").textContent = error instanceof Offline ? "Offline: connect once to choose a warehouse." : String(error instanceof Error ? error.message : error);
  }
}

async function work() {
  const user = await replica.user();
  const warehouse = await replica.warehouse();
  await loadCatalog();
  const editor = await replica.mayEditProducts();
  $("edit-refused").hidden = editor;
  $("edit-fields").toggleAttribute("disabled", !editor);
  $("where").textContent = warehouse ? `Warehouse ${warehouse}` : "";
  $("account").textContent = user ? `${user.email} (${user.role})` : "";
  show("work");
  await refreshLists();
}

// --- product lookup ----------------------------------------------------------------------------

/** @param {string} code */
function exact(code) {
  const wanted = code.trim().toLowerCase();
  return catalog.find((p) => p.sku.toLowerCase() === wanted || (p.barcodes ?? []).includes(code.trim())) ?? asUpc(code.trim());
}

/** A UPC-A code (12 digits) is the EAN-13 with a leading 0, and the other way round. @param {string} code */
function asUpc(code) {
  const other = /^\d{12}$/.test(code) ? `0${code}` : /^0\d{12}$/.test(code) ? code.slice(1) : "";
  return other ? catalog.find((p) => p.sku === other || (p.barcodes ?? []).includes(other)) : undefined;
}

/** @param {string} text */
function matching(text) {
  const wanted = text.trim().toLowerCase();
  if (!wanted) return [];
  return catalog
    .filter((p) => p.sku.toLowerCase().includes(wanted) || p.name.toLowerCase().includes(wanted) || (p.barcodes ?? []).some((b) => b.includes(wanted)))
    .slice(0, MAX_MATCHES);
}

function listMatches() {
  const found = matching(input("lookup").value);
  $("matches").replaceChildren(
    ...found.map((p) => {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = `${p.name} · ${p.sku}`;
      button.addEventListener("click", () => choose(p, true));
      li.append(button);
      return li;
    }),
  );
}

/** @param {Product} product @param {boolean} [focus] */
async function choose(product, focus = false) {
  // Choices overlap (a scan, then another before the first one's reads finish): only the
  // latest one may write the panel, or an earlier one's answers land under the later product.
  const choice = ++choices;
  const shown = (await replica.product(product.sku)) ?? product;
  if (choice !== choices) return;
  chosen = shown;
  const warehouse = (await replica.warehouse()) ?? "";
  const stock = await replica.store.stock(product.sku, warehouse);
  const edit = await editState(shown);
  const server = stock.on_hand - (await pendingDelta(product.sku, warehouse));
  if (choice !== choices) return;
  $("chosen").hidden = false;
  $("chosen-name").textContent = shown.name;
  $("chosen-sku").textContent = shown.sku;
  $("chosen-price").textContent = `Price ${money(shown.price_cents, shown.currency)}`;
  const note = $("chosen-edit");
  note.classList.toggle("lost", edit.lost);
  note.textContent = edit.text;
  const untouched = input("edit-name").value === filledWith.name && input("edit-price").value === filledWith.price;
  if (editing !== shown.sku || untouched) {
    editing = shown.sku;
    filledWith = { name: shown.name, price: money(shown.price_cents) };
    input("edit-name").value = filledWith.name;
    input("edit-price").value = filledWith.price;
    $("edit-price-label").textContent = `Price (${shown.currency})`;
    $("edit-error").textContent = "";
  }
  const pending = stock.pending ? ` (server ${server}, ${stock.pending} pending: ${signed(stock.on_hand - server)})` : "";
  $("chosen-stock").textContent = `On hand ${stock.on_hand}${pending} · available ${stock.available}`;
  if (focus) {
    $("matches").replaceChildren();
    input("qty").focus();
    input("qty").select();
  }
}

/**
 * Under the product's name: its pending edit over the server copy, else what the server said
 * to the last edit of it from this device (a lost edit stays visible until the next one).
 * @param {Product} shown
 * @returns {Promise<{text: string, lost: boolean}>}
 */
async function editState(shown) {
  const pending = (await replica.store.queued()).filter((m) => m.type === "product.update" && m.data.sku === shown.sku);
  if (pending.length) {
    const server = await replica.store.product(shown.sku);
    const was = server ? ` (server: “${server.name}”, ${money(server.price_cents, server.currency)})` : "";
    return { text: `Edit pending: ${pending.map((m) => fieldsText(m.data.fields ?? {})).join("; ")}${was}`, lost: false };
  }
  const last = (await replica.store.verdicts()).find((v) => v.type === "product.update" && v.data.sku === shown.sku);
  if (!last) return { text: "", lost: false };
  if (last.status === "applied") return { text: `Your edit was applied: ${fieldsText(last.data.fields ?? {})}`, lost: false };
  const text = last.detail.code === "stale_edit" ? lostText(last.detail) : `Your edit was refused: ${last.detail.message ?? last.status}`;
  return { text, lost: true };
}

/** A `stale_edit` verdict in words: which fields lost to a later edit, which were applied. @param {import("./store.js").Detail} detail */
function lostText(detail) {
  /** @param {unknown} names */
  const words = (names) => (Array.isArray(names) ? names : []).map((n) => (n === "price_cents" ? "price" : String(n))).join(" and ");
  const applied = words(detail.applied_fields);
  return `Your edit of ${words(detail.lost_fields)} lost to a newer one${applied ? `; your ${applied} was applied` : ""}.`;
}

/** @param {SubmitEvent} event */
async function saveEdit(event) {
  event.preventDefault();
  const error = $("edit-error");
  error.textContent = "";
  if (!chosen) return;
  const product = chosen;
  if (!(await replica.mayEditProducts())) {
    error.textContent = $("edit-refused").textContent ?? "";
    return;
  }
  /** @type {import("./replica.js").ProductEdit} */
  const fields = {};
  const name = input("edit-name").value.trim();
  const price = cents(input("edit-price").value);
  input("edit-name").toggleAttribute("aria-invalid", !name);
  input("edit-price").toggleAttribute("aria-invalid", price === null);
  if (!name) {
    error.textContent = "Enter a name (1 to 200 characters).";
    input("edit-name").focus();
    return;
  }
  if (price === null) {
    error.textContent = "Enter the price as a number like 4.50.";
    input("edit-price").focus();
    return;
  }
  if (name !== product.name) fields.name = name;
  if (price !== product.price_cents) fields.price_cents = price;
  try {
    await replica.editProduct(product.sku, fields);
  } catch (failure) {
    error.textContent = failure instanceof Error ? failure.message : String(failure);
    return;
  }
  editing = ""; // show the edited values from the queue
  await loadCatalog();
  await refreshLists();
  if (navigator.onLine) void sync();
}

/** @param {SubmitEvent} event */
async function recordAdjustment(event) {
  event.preventDefault();
  const error = $("adjust-error");
  error.textContent = "";
  if (!chosen) return;
  const units = Number(input("adjust-qty").value);
  if (input("adjust-qty").value === "" || !Number.isInteger(units) || units < 1) {
    error.textContent = "Enter the units as a whole number, 1 or more.";
    input("adjust-qty").setAttribute("aria-invalid", "true");
    input("adjust-qty").focus();
    return;
  }
  // The sign comes from the reason: a phone's numeric keypad often has no minus key.
  const choice = /** @type {HTMLSelectElement} */ ($("adjust-reason")).value;
  try {
    await replica.adjust(chosen.sku, choice === "correction-up" ? units : -units, choice === "damage" ? "damage" : "correction");
  } catch (failure) {
    error.textContent = failure instanceof Error ? failure.message : String(failure);
    return;
  }
  input("adjust-qty").removeAttribute("aria-invalid");
  input("adjust-qty").value = "1";
  await refreshLists();
  if (navigator.onLine) void sync();
}

// --- sync exceptions (the last fetched list, readable offline) ---------------------------------

async function showExceptions() {
  const held = await exceptions.stored(replica);
  const items = held?.items ?? [];
  $("exceptions-open").textContent = held ? `Open sync exceptions (${items.length})` : "Open sync exceptions";
  $("exceptions-warehouse").textContent = (await replica.warehouse()) ?? "";
  $("exceptions-asof").textContent = held ? `As of ${when(held.fetched)}` : "Not fetched yet: sync once online.";
  fill($("exceptions-list"), items.map(exceptions.describe), "No open exceptions from this device.");
}

async function openExceptions() {
  show("exceptions");
  $("exceptions-error").textContent = "";
  await showExceptions();
  $("exceptions-title").focus();
  if (navigator.onLine) await refreshExceptions();
}

async function refreshExceptions() {
  $("exceptions-error").textContent = "";
  try {
    await exceptions.fetchOpen(replica);
  } catch (error) {
    $("exceptions-error").textContent =
      error instanceof Offline ? "Offline: this is the list of the last fetch." : `Not refreshed: ${error instanceof Error ? error.message : error}`;
  }
  await showExceptions();
}

/** @param {string} sku @param {string} warehouse */
async function pendingDelta(sku, warehouse) {
  const queue = await replica.store.queued();
  return queue.filter((m) => m.data.sku === sku && m.data.warehouse === warehouse).reduce((s, m) => s + delta(m), 0);
}

/** @param {SubmitEvent} event */
async function move(event) {
  event.preventDefault();
  const action = /** @type {HTMLButtonElement | null} */ (event.submitter)?.value;
  const qty = Number(input("qty").value);
  $("move-error").textContent = "";
  if (!chosen) return;
  try {
    if (action === "sell") await replica.sell(chosen.sku, qty);
    else await replica.receive(chosen.sku, qty);
  } catch (error) {
    $("move-error").textContent = error instanceof Error ? error.message : String(error);
    input("qty").setAttribute("aria-invalid", "true");
    return;
  }
  input("qty").removeAttribute("aria-invalid");
  if (input("qty").value === String(qty)) input("qty").value = "1"; // unless typed over meanwhile
  await refreshLists();
  if (navigator.onLine) void sync();
}

// --- count session (kept in meta, so a reload keeps it) ----------------------------------------

/** @returns {Promise<CountLine[]>} */
async function countLines() {
  return (await replica.store.getMeta("count_lines")) ?? [];
}

async function showCountLines() {
  const lines = await countLines();
  const blind = input("blind").checked;
  fill(
    $("count-lines"),
    lines.map((l) => `${l.sku}: counted ${l.counted}${blind ? "" : ` (expected ${l.seen}, ${signed(l.counted - l.seen)})`}`),
    "Nothing counted yet.",
    (li, index) => {
      const remove = document.createElement("button");
      remove.type = "button";
      remove.textContent = "Remove";
      remove.setAttribute("aria-label", `Remove ${lines[index].sku} from the count`);
      remove.addEventListener("click", async () => {
        const now = await countLines();
        now.splice(index, 1);
        await replica.store.setMeta("count_lines", now);
        await showCountLines();
      });
      li.append(" ", remove);
    },
  );
  $("count-submit").hidden = lines.length === 0;
}

/** @param {SubmitEvent} event */
async function addCount(event) {
  event.preventDefault();
  const product = exact(input("count-sku").value);
  const counted = Number(input("count-qty").value);
  $("count-error").textContent = "";
  if (!product) {
    $("count-error").textContent = `No product with SKU or barcode ${input("count-sku").value.trim() || "(empty)"}.`;
    input("count-sku").focus();
    return;
  }
  if (input("count-qty").value === "" || !Number.isInteger(counted) || counted < 0) {
    $("count-error").textContent = "Enter the counted quantity as a whole number, 0 or more.";
    input("count-qty").focus();
    return;
  }
  const warehouse = (await replica.warehouse()) ?? "";
  const seen = (await replica.store.stock(product.sku, warehouse)).on_hand;
  const lines = await countLines();
  lines.push({ sku: product.sku, counted, seen });
  await replica.store.setMeta("count_lines", lines);
  input("count-sku").value = "";
  input("count-qty").value = "";
  input("count-sku").focus();
  await showCountLines();
}

async function submitCount() {
  for (const line of await countLines()) await replica.count(line.sku, line.counted, line.seen);
  await replica.store.deleteMeta("count_lines");
  await refreshLists();
  if (navigator.onLine) void sync();
}

// --- wiring ------------------------------------------------------------------------------------

/** @param {SubmitEvent} event */
async function signIn(event) {
  event.preventDefault();
  $("signin-error").textContent = "";
  try {
    const takeOver = !$("take-over-row").hidden && input("take-over").checked;
    await replica.signIn(input("email").value.trim(), input("password").value, input("otp").value.trim(), takeOver);
  } catch (error) {
    if (error instanceof QueueOfAnother) {
      $("take-over-label").textContent = `Send the ${error.waiting} waiting change(s) of ${error.owner} under my account`;
      $("take-over-row").hidden = false;
      $("signin-error").textContent = `${error.message}: ${error.owner} can sign in to send them, or tick the box to send them as yours.`;
      return;
    }
    $("signin-error").textContent = error instanceof Offline ? "Offline: signing in needs the network." : `Not signed in: ${error instanceof Error ? error.message : error}`;
    return;
  }
  input("password").value = "";
  input("otp").value = "";
  input("take-over").checked = false;
  $("take-over-row").hidden = true;
  await start();
}

/** @param {SubmitEvent} event */
async function useWarehouse(event) {
  event.preventDefault();
  const code = /** @type {HTMLSelectElement} */ ($("warehouse")).value;
  if (!code) return;
  await replica.useWarehouse(code);
  show("pulling");
  $("pull-count").textContent = "0 rows";
  await sync(true);
  await work();
}

/** A keyboard-wedge scanner types the code and Enter: an exact SKU or barcode is chosen. */
function lookupEnter(/** @type {SubmitEvent} */ event) {
  event.preventDefault();
  findCode(input("lookup").value);
}

/** @param {string} text an exact SKU or barcode is chosen, else the matches are listed */
function findCode(text) {
  const product = exact(text) ?? (matching(text).length === 1 ? matching(text)[0] : undefined);
  $("lookup-error").textContent = "";
  if (product) {
    input("lookup").value = "";
    void choose(product, true);
  } else {
    input("lookup").value = text;
    listMatches();
    if (!$("matches").childElementCount) $("lookup-error").textContent = `No product with SKU or barcode ${text.trim()}.`;
  }
}

/** The camera buttons: a code read in the lookup is looked up; in the count, it fills the SKU. */
function wireScanner() {
  if (!cameraAvailable()) return; // no camera API (e.g. not HTTPS): type or wedge-scan instead
  const scanner = new Scanner(/** @type {HTMLDialogElement} */ ($("scanner")), /** @type {HTMLVideoElement} */ ($("scan-video")), $("scan-status"));
  $("scan-close").addEventListener("click", () => /** @type {HTMLDialogElement} */ ($("scanner")).close());
  $("scan-lookup").hidden = false;
  $("scan-count").hidden = false;
  $("scan-lookup").addEventListener("click", () => void scanner.open((code) => findCode(code)));
  $("scan-count").addEventListener("click", () =>
    void scanner.open((code) => {
      input("count-sku").value = code;
      input("count-qty").focus();
    }),
  );
}

async function main() {
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("sw.js", { scope: "./" }).catch(() => {});
  }
  replica = await Replica.open();
  $("signin-form").addEventListener("submit", (e) => void signIn(/** @type {SubmitEvent} */ (e)));
  $("pick-form").addEventListener("submit", (e) => void useWarehouse(/** @type {SubmitEvent} */ (e)));
  $("find-form").addEventListener("submit", (e) => lookupEnter(/** @type {SubmitEvent} */ (e)));
  input("lookup").addEventListener("input", () => {
    $("lookup-error").textContent = "";
    listMatches();
  });
  wireScanner();
  $("move-form").addEventListener("submit", (e) => void move(/** @type {SubmitEvent} */ (e)));
  $("adjust-form").addEventListener("submit", (e) => void recordAdjustment(/** @type {SubmitEvent} */ (e)));
  $("edit-form").addEventListener("submit", (e) => void saveEdit(/** @type {SubmitEvent} */ (e)));
  $("exceptions-open").addEventListener("click", () => void openExceptions());
  $("exceptions-refresh").addEventListener("click", () => void refreshExceptions());
  $("exceptions-back").addEventListener("click", () => {
    show("work");
    $("exceptions-open").focus();
  });
  $("count-form").addEventListener("submit", (e) => void addCount(/** @type {SubmitEvent} */ (e)));
  input("count-sku").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && input("count-sku").value.trim()) {
      e.preventDefault();
      input("count-qty").focus();
    }
  });
  input("blind").addEventListener("change", () => void showCountLines());
  $("count-submit").addEventListener("click", () => void submitCount());
  $("sync-now").addEventListener("click", () => {
    $("sync-now").setAttribute("disabled", "");
    void sync();
  });
  $("change-warehouse").addEventListener("click", () => void pick());
  $("sign-out").addEventListener("click", async () => {
    await replica.signOut();
    show("signin");
    await banner();
  });
  window.addEventListener("online", () => void sync());
  window.addEventListener("offline", () => void banner());
  setInterval(() => {
    if (navigator.onLine && !syncing) void sync();
  }, SYNC_EVERY_MS);
  await start();
  document.body.dataset.ready = "true";
}

void main();
