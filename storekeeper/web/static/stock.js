// @ts-check
/**
 * The count sheet (stocktake) of the Stock pages, on top of a form that works without it.
 *
 * - In the scan field, Enter (what a keyboard-wedge scanner sends after the code) finds the
 *   SKU's line and focuses its count; a SKU not on the sheet gets a new line (from the
 *   sheet's <template>) first. Without this module, Enter submits the form, whose default
 *   button ("Add line") asks the server for the same.
 * - In a count field, Enter goes back to the scan field for the next item instead of
 *   submitting a half-counted sheet.
 */

/**
 * @param {HTMLElement} body
 * @param {string} sku
 * @returns {HTMLTableRowElement | null}
 */
function findLine(body, sku) {
  for (const row of body.querySelectorAll("tr[data-sku]")) {
    if (row instanceof HTMLTableRowElement && row.dataset.sku === sku) return row;
  }
  return null;
}

/**
 * A new line for ``sku`` at the end of the sheet, copied from the template.
 * @param {HTMLElement} body
 * @param {HTMLTemplateElement} template
 * @param {string} sku
 * @returns {HTMLTableRowElement | null}
 */
function addLine(body, template, sku) {
  const copy = template.content.firstElementChild?.cloneNode(true);
  if (!(copy instanceof HTMLTableRowElement)) return null;
  const number = String(body.querySelectorAll("tr[data-sku]").length + 1);
  const id = `counted-${number}`;
  copy.dataset.sku = sku;
  setText(copy, "[data-line-number]", number);
  setText(copy, "[data-line-sku]", sku);
  const label = copy.querySelector("[data-line-label]");
  if (label instanceof HTMLLabelElement) {
    label.htmlFor = id;
    label.textContent = `Counted ${sku}`;
  }
  const hidden = copy.querySelector('input[name="sku"]');
  if (hidden instanceof HTMLInputElement) hidden.value = sku;
  const counted = copy.querySelector('input[name="counted"]');
  if (counted instanceof HTMLInputElement) counted.id = id;
  const remove = copy.querySelector('button[name="remove"]');
  if (remove instanceof HTMLButtonElement) {
    remove.value = number;
    remove.setAttribute("aria-label", `Remove line ${number} (${sku})`);
  }
  body.append(copy);
  return copy;
}

/**
 * @param {Element} root
 * @param {string} selector
 * @param {string} text
 */
function setText(root, selector, text) {
  const element = root.querySelector(selector);
  if (element) element.textContent = text;
}

/** @param {HTMLFormElement} form */
function setUp(form) {
  const scan = form.querySelector("#count-scan");
  const body = form.querySelector("#count-lines");
  const template = form.querySelector("#count-line-template");
  const status = form.querySelector("#count-status");
  if (
    !(scan instanceof HTMLInputElement) ||
    !(body instanceof HTMLElement) ||
    !(template instanceof HTMLTemplateElement)
  ) {
    return;
  }

  scan.addEventListener("keydown", (event) => {
    if (event.key !== "Enter") return;
    event.preventDefault();
    const sku = scan.value.trim();
    if (!sku) return;
    const found = findLine(body, sku);
    const row = found ?? addLine(body, template, sku);
    const counted = row?.querySelector('input[name="counted"]');
    if (!(counted instanceof HTMLInputElement)) return;
    scan.value = "";
    if (status) {
      const number = row?.querySelector("td")?.textContent?.trim() ?? "";
      status.textContent = found ? `${sku} is on line ${number}` : `${sku} added as line ${number}`;
    }
    counted.focus();
    counted.select();
  });

  body.addEventListener("keydown", (event) => {
    const field = event.target;
    if (event.key !== "Enter" || !(field instanceof HTMLInputElement) || field.name !== "counted") {
      return;
    }
    event.preventDefault();
    scan.focus();
  });
}

const sheet = document.querySelector("form[data-count-sheet]");
if (sheet instanceof HTMLFormElement) setUp(sheet);
