// @ts-check
/**
 * Orders pages, on top of htmx; every action also works as a plain form without JavaScript.
 *
 * - A refused ship or cancel (403, 409, 422) answers the order page with the reason in words:
 *   htmx drops error answers by default, so it is swapped in like a success. An error answer
 *   without the region asked for (an error page) replaces the page's main content.
 * - The packing slip's Print button (hidden without JavaScript, where the browser's own print
 *   command does the same).
 */

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

for (const button of document.querySelectorAll("button[data-print]")) {
  if (!(button instanceof HTMLButtonElement)) continue;
  button.hidden = false;
  button.addEventListener("click", () => window.print());
}
