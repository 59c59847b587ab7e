// @ts-check
/**
 * A report's chart, drawn with uPlot (loaded before this module as a classic script, the
 * global `uPlot`) from the JSON the page carries in `<script type="application/json"
 * id="chart-data">`: bars per row (sales, stock, value, cumulative share) or, for a SKU's
 * history, each warehouse's on-hand as a step line over time. The table below the chart holds
 * the same numbers, so without script nothing is lost.
 */

/**
 * @typedef {object} Chart
 * @property {"bars" | "time"} kind
 * @property {string[]} [labels] one per bar
 * @property {number[]} [x] Unix seconds of each point (kind "time")
 * @property {string} unit
 * @property {{label: string, values: number[]}[]} series
 */

const HEIGHT = 320;
const COLOURS = ["#0b5cad", "#b54708", "#027a48", "#6941c6", "#c11574", "#475467"];

/**
 * uPlot's columns: x, then one column per series.
 * @param {Chart} c
 * @returns {number[][]}
 */
export function columns(c) {
  const x = c.kind === "bars" ? (c.labels || []).map((_, i) => i) : c.x || [];
  return [x, ...c.series.map((s) => s.values)];
}

/**
 * @param {any} uPlot the uPlot constructor
 * @param {Chart} c
 * @param {number} width
 * @returns {object}
 */
function options(uPlot, c, width) {
  const bars = c.kind === "bars";
  const labels = c.labels || [];
  const paths = bars ? uPlot.paths.bars({ size: [0.6, 64] }) : uPlot.paths.stepped({ align: 1 });
  return {
    width,
    height: HEIGHT,
    tzDate: (/** @type {number} */ ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
    legend: { show: !bars },
    cursor: { drag: { x: false, y: false } },
    scales: bars ? { x: { time: false, range: [-0.5, Math.max(labels.length - 0.5, 0.5)] } } : { x: { time: true } },
    axes: [
      bars
        ? {
            values: (/** @type {unknown} */ _u, /** @type {number[]} */ ticks) =>
              ticks.map((i) => (Number.isInteger(i) ? labels[i] || "" : "")),
            rotate: -30,
            size: 80,
          }
        : {},
      { label: c.unit },
    ],
    series: [
      {},
      ...c.series.map((s, i) => ({
        label: s.label,
        stroke: COLOURS[i % COLOURS.length],
        fill: bars ? "rgba(11, 92, 173, 0.55)" : undefined,
        width: 2,
        paths,
        points: { show: false },
      })),
    ],
  };
}

function draw() {
  const source = document.getElementById("chart-data");
  const target = document.getElementById("chart");
  /** @type {any} */
  const uPlot = /** @type {any} */ (window).uPlot;
  if (!source || !target || typeof uPlot !== "function") return;
  /** @type {Chart} */
  const c = JSON.parse(source.textContent || "{}");
  if (!c.series || c.series.length === 0) return;
  let width = target.clientWidth;
  const plot = new uPlot(options(uPlot, c, width), columns(c), target);
  target.dataset.drawn = "true";
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
