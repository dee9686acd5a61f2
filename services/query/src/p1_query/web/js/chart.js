// uPlot charts: lines (power over a day) and stacked bars (energy per bucket). A missing value is null
// and uPlot leaves it out, so a gap in the data is a gap on screen. Colours come from the CSS custom
// properties of app.css, so light and dark follow the system like the rest of the page.

import uPlot from "../vendor/uplot-1.6.32/uPlot.esm.js";
import { h } from "./dom.js";

const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

function size(el) {
  const width = Math.max(280, el.clientWidth);
  return { width, height: width < 600 ? 220 : 300 };
}

/** Axes whose tick labels are the page's own Intl formats (uPlot's built-in ones are English only);
 * the unit is in every y label, so the axis needs no title. */
function axes(formatY, formatTick) {
  const stroke = css("--muted");
  const grid = { stroke: css("--grid"), width: 1 };
  return [
    { stroke, grid, ticks: grid, values: (u, ticks) => ticks.map((t) => formatTick(new Date(t * 1000))) },
    { stroke, grid, ticks: grid, size: 76, values: (u, ticks) => ticks.map(formatY) },
  ];
}

/** Mounts a chart in `holder` (a figure with a caption); re-sizes with it; returns the uPlot. */
function mount(holder, options, data) {
  const box = h("div", { class: "chart-box" });
  holder.append(box);
  const plot = new uPlot({ ...size(box), ...options }, data, box);
  const observer = new ResizeObserver(() => plot.setSize(size(box)));
  observer.observe(box);
  holder.dispose = () => {
    observer.disconnect();
    plot.destroy();
  };
  return plot;
}

function sparse(values) {
  let present = 0;
  for (const v of values) if (v != null) present += 1;
  return present > 0 && present < values.length / 3;
}

/** Lines over a time axis: x in Unix seconds, series [{label, values, color}]. */
export function lines(holder, { x, series, formatY, formatValue, formatTick }) {
  const options = {
    scales: { x: { time: true } },
    axes: axes(formatY, formatTick),
    series: [
      { label: "Time" },
      ...series.map((s) => ({
        label: s.label,
        stroke: css(s.color),
        width: 1.5,
        value: (u, v) => formatValue(v),
        // Readings sparser than the buckets (a history kept at 5 minutes) are dots, not invisible
        // one-point lines; a null between them stays a gap.
        points: { show: sparse(s.values), size: 4, fill: css(s.color) },
      })),
    ],
    cursor: { drag: { x: false, y: false } },
  };
  return mount(holder, options, [x, ...series.map((s) => s.values)]);
}

/** Bars over a time axis, stacked by drawing each stack's running sum, the tallest first; the legend
 * shows each part's own value. x is each bucket's middle; parts [{label, values, color, stack}]. */
export function stackedBars(holder, { x, parts, formatY, formatValue, formatX, formatTick, halfWidth }) {
  const drawn = [];
  const running = new Map();
  for (const part of parts) {
    const below = running.get(part.stack) ?? x.map(() => 0);
    const total = part.values.map((v, i) => (v == null ? null : v + (below[i] ?? 0)));
    running.set(part.stack, total.map((v, i) => v ?? below[i]));
    drawn.push({ ...part, total });
  }
  drawn.reverse(); // the running sums from the top down: each drawn over the larger one before it
  const bars = uPlot.paths.bars({ size: [0.8, 40], align: 0 });
  const options = {
    scales: {
      // Half a bucket of room at each end so the first and last bars show whole; y always holds 0.
      x: { time: true, range: (u, lo, hi) => [lo - halfWidth, hi + halfWidth] },
      y: { range: (u, lo, hi) => [Math.min(0, lo ?? 0) * 1.05, Math.max(0, hi ?? 0) * 1.05 || 1] },
    },
    axes: axes(formatY, formatTick),
    series: [
      { label: "Time", value: formatX ? (u, v) => (v == null ? "—" : formatX(v)) : undefined },
      ...drawn.map((p) => ({
        label: p.label,
        fill: css(p.color),
        stroke: css(p.color),
        width: 0,
        paths: bars,
        points: { show: false },
        value: (u, v, si, i) => formatValue(i == null ? null : p.values[i]),
      })),
    ],
    cursor: { drag: { x: false, y: false } },
  };
  return mount(holder, options, [x, ...drawn.map((p) => p.total)]);
}

/** A figure for a chart: caption first (its accessible name), chart appended by lines()/stackedBars(). */
export function figure(caption, attrs = {}) {
  return h("figure", { class: "chart", ...attrs }, h("figcaption", {}, caption));
}
