// @ts-check
/**
 * Camera scanning: the rear camera in a modal dialog, read by the browser's `BarcodeDetector`
 * when it has one for our formats, else by the vendored WebAssembly polyfill (barcode-detector
 * 3.2.2 with zxing-wasm's reader, loaded only then, its .wasm from this server). The first code
 * read stops the camera and is handed to the caller. Manual: docs/clerk-app.md#scanning.
 * @module
 */

/** The codes on goods and shelf labels: EAN-13 (and UPC-A inside it) and Code 128. */
const FORMATS = ["ean_13", "upc_a", "code_128"];
const POLYFILL = "./vendor/barcode-detector-3.2.2/ponyfill.js";
const WASM = new URL("./vendor/barcode-detector-3.2.2/zxing_reader.wasm", import.meta.url).href;
const EVERY_MS = 120;

/** @typedef {{rawValue: string, format: string}} Detected */
/** @typedef {{detect(source: HTMLVideoElement): Promise<Detected[]>}} Detector */

/** @type {Promise<Detector> | null} */
let detector = null;

/** The browser's own detector if it reads our formats, else the polyfill (loaded once). */
async function makeDetector() {
  const native = /** @type {any} */ (globalThis).BarcodeDetector;
  if (native) {
    const supported = /** @type {string[]} */ (await native.getSupportedFormats().catch(() => []));
    const formats = FORMATS.filter((f) => supported.includes(f));
    if (formats.length) return /** @type {Detector} */ (new native({ formats }));
  }
  const polyfill = await import(POLYFILL);
  polyfill.prepareZXingModule({
    overrides: {
      /** @param {string} path @param {string} prefix */
      locateFile: (path, prefix) => (path.endsWith(".wasm") ? WASM : prefix + path),
    },
  });
  return /** @type {Detector} */ (new polyfill.BarcodeDetector({ formats: FORMATS }));
}

/** Whether this browser can open a camera at all (needs a secure context). */
export function cameraAvailable() {
  return Boolean(navigator.mediaDevices?.getUserMedia);
}

/**
 * A scanner bound to the dialog's elements: `open(onCode)` starts the camera; Close, Esc or a
 * hit stops it.
 */
export class Scanner {
  /**
   * @param {HTMLDialogElement} dialog
   * @param {HTMLVideoElement} video
   * @param {HTMLElement} status
   */
  constructor(dialog, video, status) {
    this.dialog = dialog;
    this.video = video;
    this.status = status;
    /** @type {MediaStream | null} */
    this.stream = null;
    /** @type {number | undefined} */
    this.timer = undefined;
    this.session = 0;
    dialog.addEventListener("close", () => this.stop());
  }

  /** @param {(code: string, format: string) => void} onCode */
  async open(onCode) {
    const session = ++this.session;
    this.status.textContent = "Starting the camera…";
    if (!this.dialog.open) this.dialog.showModal();
    try {
      detector ??= makeDetector();
      const [stream, reader] = await Promise.all([
        navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false }),
        detector,
      ]);
      if (session !== this.session) {
        for (const track of stream.getTracks()) track.stop();
        return;
      }
      this.stream = stream;
      this.video.srcObject = stream;
      await this.video.play();
      this.status.textContent = "Point the camera at the barcode.";
      this.loop(reader, session, onCode);
    } catch (error) {
      detector = null; // a failed polyfill load is tried again next time
      this.stopCamera();
      this.status.textContent = explain(error);
    }
  }

  /**
   * @param {Detector} reader
   * @param {number} session
   * @param {(code: string, format: string) => void} onCode
   */
  loop(reader, session, onCode) {
    const tick = async () => {
      if (session !== this.session) return;
      let found = /** @type {Detected[]} */ ([]);
      if (this.video.readyState >= HTMLMediaElement.HAVE_CURRENT_DATA) {
        found = await reader.detect(this.video).catch(() => []);
      }
      if (session !== this.session) return;
      const hit = found.find((d) => d.rawValue);
      if (!hit) {
        this.timer = window.setTimeout(tick, EVERY_MS);
        return;
      }
      navigator.vibrate?.(80);
      this.dialog.close(); // stops the camera
      onCode(hit.rawValue, hit.format);
    };
    void tick();
  }

  stopCamera() {
    window.clearTimeout(this.timer);
    for (const track of this.stream?.getTracks() ?? []) track.stop();
    this.stream = null;
    this.video.srcObject = null;
  }

  /** Stop the camera and any detection in flight (the dialog's close event calls this). */
  stop() {
    this.session++;
    this.stopCamera();
  }
}

/** @param {unknown} error */
function explain(error) {
  const name = error instanceof DOMException ? error.name : "";
  if (name === "NotAllowedError") return "The camera is blocked for this app: allow it in the browser's site settings, or type or wedge-scan the code.";
  if (name === "NotFoundError" || name === "OverconstrainedError") return "No camera found: type the code or use a scanner.";
  if (name === "NotReadableError") return "The camera is busy in another app: close it and try again.";
  return `The camera could not start: ${error instanceof Error ? error.message : String(error)}`;
}
