// @ts-check
/**
 * Dashboard cards refresh themselves over the page's live stream with
 * `hx-trigger="sse:stock.changed throttle:1s, refresh"`: htmx fetches on the first event of a
 * burst and ignores the rest for a second. So that a card does not keep the state of a burst's
 * first event, this module watches the events a card received during that second and, if any
 * came, triggers one more `refresh` when it ends (and keeps doing so while events continue).
 * A card opts in with `data-live-settle="<milliseconds>"`.
 */

/** @typedef {{ pending: boolean }} Window */

/** @type {WeakMap<HTMLElement, Window>} */
const open = new WeakMap();

/**
 * @param {HTMLElement} card
 * @param {number} ms
 */
function startWindow(card, ms) {
  /** @type {Window} */
  const state = { pending: false };
  open.set(card, state);
  window.setTimeout(() => {
    open.delete(card);
    if (!state.pending || !card.isConnected) return;
    /** @type {any} */ (window).htmx.trigger(card, "refresh");
    startWindow(card, ms);
  }, ms);
}

/** @param {Event} event */
function onLiveMessage(event) {
  const card = event.target;
  if (!(card instanceof HTMLElement)) return;
  const ms = Number(card.dataset.liveSettle);
  if (!ms) return;
  const state = open.get(card);
  if (state) {
    state.pending = true;
  } else {
    startWindow(card, ms);
  }
}

document.addEventListener("htmx:sseMessage", onLiveMessage);
