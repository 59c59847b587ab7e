// @ts-check
/**
 * The clerk app's service worker: the app shell from its cache (cache first), so the app opens
 * with no network; `/api/` is never touched (network only: the page's own fetches go straight
 * to the server, and fail as offline when there is none). The cache is named after the shell's
 * content hash, which the server writes in place of the mark below (storekeeper/web/clerk_app.py);
 * a new release is a new cache, and the old ones are dropped on activation. The camera polyfill
 * (LAZY) is cached when first fetched, so scanning works offline once it was used online.
 * @module
 */
/// <reference lib="webworker" />

const VERSION = "__SHELL_HASH__";
const CACHE = `clerk-shell-${VERSION}`;
// The shell's files: the server writes storekeeper.web.clerk_app.SHELL in place of the mark.
const SHELL = ["./", "__SHELL_FILES__"];

/** Fetched on first use only (the camera polyfill, ~1.2 MB), then kept in the same cache. */
const LAZY = "/vendor/barcode-detector-3.2.2/";

const worker = /** @type {ServiceWorkerGlobalScope} */ (/** @type {unknown} */ (self));

worker.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(SHELL.map((path) => new Request(path, { cache: "reload" }))))
      .then(() => worker.skipWaiting()),
  );
});

worker.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) => Promise.all(names.filter((n) => n.startsWith("clerk-shell-") && n !== CACHE).map((n) => caches.delete(n))))
      .then(() => worker.clients.claim()),
  );
});

worker.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== worker.location.origin) return;
  if (!url.pathname.startsWith("/app/")) return; // /api/ and everything else: network only
  const key = event.request.mode === "navigate" ? "./" : event.request;
  event.respondWith(
    caches.open(CACHE).then(async (cache) => {
      const hit = await cache.match(key, { ignoreSearch: true });
      if (hit) return hit;
      const response = await fetch(event.request);
      if (response.ok && url.pathname.includes(LAZY)) await cache.put(event.request, response.clone());
      return response;
    }),
  );
});
