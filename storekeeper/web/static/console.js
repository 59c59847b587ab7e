// @ts-check
/**
 * The console's own behaviour, on top of htmx; every page works without it (progressive
 * enhancement): forms post and links navigate as plain HTML.
 *
 * - A keyboard-wedge barcode scanner types the code and presses Enter. In a field marked
 *   `data-scan`, Enter moves to the field named by `data-scan-next` (e.g. from SKU to quantity)
 *   instead of submitting a half-filled form; without `data-scan-next` it submits as usual.
 * - A form marked `data-confirm="question"` asks before it is sent.
 * - A refused htmx request (403, 409, 422: a form error, a stale edit) answers with the reason in
 *   words: htmx drops error answers by default, so it is swapped in like a success. An error
 *   answer without the region asked for (an error page) replaces the page's main content.
 */

/** @param {Event} event */
function onKeydown(event) {
  const key = /** @type {KeyboardEvent} */ (event);
  const field = key.target;
  if (key.key !== "Enter" || !(field instanceof HTMLInputElement) || !field.hasAttribute("data-scan")) {
    return;
  }
  const nextId = field.getAttribute("data-scan-next");
  const next = nextId ? document.getElementById(nextId) : null;
  if (next instanceof HTMLInputElement || next instanceof HTMLSelectElement || next instanceof HTMLButtonElement) {
    key.preventDefault();
    field.value = field.value.trim();
    next.focus();
    if (next instanceof HTMLInputElement) next.select();
  }
}

/** @param {SubmitEvent} event */
function onSubmit(event) {
  const form = event.target;
  if (!(form instanceof HTMLFormElement)) return;
  const question = form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
    event.stopImmediatePropagation();
  }
}

document.addEventListener("keydown", onKeydown, true);
document.addEventListener("submit", onSubmit, true);

/**
 * @typedef {{ xhr: XMLHttpRequest, target: Element, shouldSwap: boolean, isError: boolean,
 *   serverResponse: string, selectOverride?: string, swapOverride?: string }} SwapDetail
 */

/** @param {Event} event */
function onBeforeSwap(event) {
  const detail = /** @type {CustomEvent<SwapDetail>} */ (event).detail;
  if (detail.xhr.status < 400) return;
  detail.shouldSwap = true;
  detail.isError = false;
  const page = new DOMParser().parseFromString(detail.serverResponse, "text/html");
  if (!detail.target.id || !page.getElementById(detail.target.id)) {
    const main = document.getElementById("main");
    if (main) {
      detail.target = main;
      detail.selectOverride = "#main";
      detail.swapOverride = "outerHTML";
    }
  }
}

document.addEventListener("htmx:beforeSwap", onBeforeSwap);
