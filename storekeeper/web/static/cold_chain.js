// @ts-check
/**
 * A sensor's temperature chart, drawn with uPlot (loaded before this module as a classic
 * script, the global `uPlot`) from the JSON the page carries in
 * `<script type="application/json" id="series">`: per bucket the lowest and highest reading
 * as a band and the mean as a line, and the sensor's effective range as dashed lines.
 * The table below the chart holds the same numbers, so without script nothing is lost.
 */

/**
 * What the server puts into `#series` (times in Unix seconds, temperatures in °C).
 * @typedef {object} Series
 * @property {string} sensor
 * @property {number} from start of the window
 * @property {number} to end of the window
 * @property {number} bucket_s width of a bucket
 * @property {number[]} t start of each bucket that has readings, ascending
 * @property {number[]} min
 * @property {number[]} max
 * @property {number[]} avg
 * @property {number | null} low lower end of the effective range, if any
 * @property {number | null} high upper end of the effective range, if any
 */

/** @typedef {(number | null)[]} Column */

const HEIGHT = 320;

/**
 * uPlot's columns: time, max, min, mean, then a column per end of the range. A missing
 * bucket becomes a null point, so the band and the mean break there instead of bridging the
 * gap; the window's ends are added so the range lines span the whole chart.
 * @param {Series} s
 * @returns {Column[]}
 */
export function columns(s) {
  /** @type {Column} */ const t = [];
  /** @type {Column} */ const max = [];
  /** @type {Column} */ const min = [];
  /** @type {Column} */ const avg = [];
  /** @param {number} at @param {number | null} hi @param {number | null} lo @param {number | null} mean */
  const push = (at, hi, lo, mean) => {
    t.push(at);
    max.push(hi);
    min.push(lo);
    avg.push(mean);
  };
  if (s.t.length === 0 || s.t[0] > s.from) push(s.from, null, null, null);
  s.t.forEach((at, i) => {
    const previous = i > 0 ? s.t[i - 1] : null;
    if (previous !== null && at - previous > s.bucket_s) push(previous + s.bucket_s, null, null, null);
    push(at, s.max[i], s.min[i], s.avg[i]);
  });
  const last = s.t.length ? s.t[s.t.length - 1] : s.from;
  if (s.to > last) push(s.to, null, null, null);
  /** @type {Column[]} */
  const data = [t, max, min, avg];
  for (const bound of [s.low, s.high]) {
    if (bound !== null) data.push(t.map(() => bound));
  }
  return data;
}

/**
 * The uPlot options for `s`, `width` pixels wide; times shown in UTC, as everywhere in the
 * console.
 * @param {any} uPlot the uPlot constructor
 * @param {Series} s
 * @param {number} width
 * @returns {object}
 */
function options(uPlot, s, width) {
  const limit = { stroke: "#b42318", width: 2, dash: [8, 5], points: { show: false }, spanGaps: true };
  const series = [
    {},
    { label: "Highest", stroke: "#5b8fd9", width: 1, points: { show: false } },
    { label: "Lowest", stroke: "#5b8fd9", width: 1, points: { show: false } },
    { label: "Mean", stroke: "#0b5cad", width: 2, points: { show: false } },
  ];
  if (s.low !== null) series.push({ label: "Allowed low", ...limit });
  if (s.high !== null) series.push({ label: "Allowed high", ...limit });
  return {
    width,
    height: HEIGHT,
    tzDate: (/** @type {number} */ ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
    legend: { show: false },
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true, range: [s.from, s.to] } },
    axes: [{}, { label: "°C", values: (/** @type {unknown} */ _u, /** @type {number[]} */ ticks) => ticks.map((v) => v.toFixed(1)) }],
    series,
    bands: [{ series: [1, 2], fill: "rgba(11, 92, 173, 0.18)" }],
  };
}

function draw() {
  const source = document.getElementById("series");
  const target = document.getElementById("chart");
  /** @type {any} */
  const uPlot = /** @type {any} */ (window).uPlot;
  if (!source || !target || typeof uPlot !== "function") return;
  /** @type {Series} */
  const s = JSON.parse(source.textContent || "{}");
  if (!s.t || s.t.length === 0) return;
  let width = target.clientWidth;
  const plot = new uPlot(options(uPlot, s, width), columns(s), target);
  // Follow the page's width (a phone turned, a window resized) on the next frame.
  new ResizeObserver(() => {
    window.requestAnimationFrame(() => {
      if (target.clientWidth > 0 && target.clientWidth !== width) {
        width = target.clientWidth;
        plot.setSize({ width, height: HEIGHT });
      }
    });
  }).observe(target);
}

draw();
