// @ts-check
/**
 * Orders pages: every action also works as a plain form without JavaScript.
 *
 * - The packing slip's Print button (hidden without JavaScript, where the browser's own print
 *   command does the same).
 */

for (const button of document.querySelectorAll("button[data-print]")) {
  if (!(button instanceof HTMLButtonElement)) continue;
  button.hidden = false;
  button.addEventListener("click", () => window.print());
}
