// @ts-check
/**
 * The console's own behaviour, on top of htmx; every page works without it (progressive
 * enhancement): forms post and links navigate as plain HTML.
 *
 * - A keyboard-wedge barcode scanner types the code and presses Enter. In a field marked
 *   `data-scan`, Enter moves to the field named by `data-scan-next` (e.g. from SKU to quantity)
 *   instead of submitting a half-filled form; without `data-scan-next` it submits as usual.
 * - A form marked `data-confirm="question"` asks before it is sent.
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
