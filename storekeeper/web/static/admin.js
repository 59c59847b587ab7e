// @ts-check
/**
 * Admin pages: a "Copy" button beside a read-only field (the device token, shown once). The
 * button is hidden without JavaScript; the field can always be selected and copied by hand.
 */

/** @param {HTMLButtonElement} button */
function enableCopy(button) {
  const field = document.getElementById(button.dataset.copy ?? "");
  const status = document.getElementById("copy-status");
  if (!(field instanceof HTMLTextAreaElement || field instanceof HTMLInputElement)) return;
  button.hidden = false;
  button.addEventListener("click", async () => {
    field.focus();
    field.select();
    try {
      await navigator.clipboard.writeText(field.value);
      if (status) status.textContent = "Token copied to the clipboard.";
    } catch {
      if (status) status.textContent = "Copying is not allowed here: the token is selected, press Ctrl+C.";
    }
  });
}

for (const button of document.querySelectorAll("button[data-copy]")) {
  if (button instanceof HTMLButtonElement) enableCopy(button);
}
