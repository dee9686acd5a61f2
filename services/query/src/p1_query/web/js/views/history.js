// History: a day by quarter-hour, a week or a month by day, a year by month, with previous and next.
// Bars split day (tariff 1) and night (tariff 2), import up and export down; costs when the server
// prices them. A day is local midnight to local midnight: a DST day shows 23 or 25 hours.

import { devicePath, getJson } from "../api.js";
import { figure, stackedBars } from "../chart.js";
import { errorLine, fill, h, stat } from "../dom.js";
import * as fmt from "../fmt.js";
import { TZ, addDays, addMonths, dayKey, iso, midnight, monthStart, parseDay, unix, weekStart, yearStart } from "../time.js";

const SPANS = {
  day: { title: "Day", bucket: "15m", start: midnight, next: (d, n) => addDays(d, n), label: fmt.day },
  week: { title: "Week", bucket: "1d", start: weekStart, next: (d, n) => addDays(d, 7 * n), label: (d) => `Week of ${fmt.shortDay(d)}` },
  month: { title: "Month", bucket: "1d", start: monthStart, next: addMonths, label: fmt.month },
  year: { title: "Year", bucket: "1mo", start: yearStart, next: (d, n) => new Date(d.getFullYear() + n, 0, 1), label: fmt.year },
};

function total(points, key) {
  let sum = null;
  for (const p of points) if (p[key] != null) sum = (sum ?? 0) + p[key];
  return sum;
}

function summary(points) {
  const cost = total(points, "import_cost_eur");
  const revenue = total(points, "export_revenue_eur");
  return h("dl", { class: "stats" },
    stat("Imported", fmt.kwh(total(points, "import_kwh")), "hist-import"),
    stat("of which day (T1)", fmt.kwh(total(points, "import_t1_kwh")), "hist-import-t1"),
    stat("of which night (T2)", fmt.kwh(total(points, "import_t2_kwh")), "hist-import-t2"),
    stat("Exported", fmt.kwh(total(points, "export_kwh")), "hist-export"),
    stat("Gas", fmt.m3(total(points, "gas_m3")), "hist-gas"),
    stat("Water", fmt.m3(total(points, "water_m3")), "hist-water"),
    cost != null ? stat("Import cost", fmt.eur(cost), "hist-cost") : null,
    revenue != null ? stat("Export revenue", fmt.eur(revenue), "hist-revenue") : null,
    cost != null && revenue != null ? stat("Net", fmt.eur(cost - revenue), "hist-net") : null);
}

/** A money figure over its energy: three narrow columns fit a 360 px phone. */
const priced = (value, id, energy) => h("td", {},
  h("span", { class: "amount", "data-testid": id, "data-value": value ?? "" }, fmt.eur(value)),
  h("span", { class: "muted small" }, fmt.kwh(energy)));

/** Each bucket's import cost and export revenue (VAT included, as the series gives them) with its
 * energy; shown only when some bucket is priced. A day's 92–100 rows start folded. */
function costTable(points, span, when) {
  if (!points.some((p) => p.import_cost_eur != null || p.export_revenue_eur != null)) return null;
  const unit = span === "day" ? "quarter-hour" : span === "year" ? "month" : "day";
  return h("details", { class: "costs", open: span !== "day", "data-testid": "hist-costs" },
    h("summary", {}, `Cost per ${unit}`),
    h("table", {},
      h("caption", { class: "visually-hidden" }, `Import cost and export revenue per ${unit}, with the energy`),
      h("thead", {}, h("tr", {}, ["Period", "Import cost (energy)", "Export revenue (energy)"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, points.map((p) => h("tr", {},
        h("th", { scope: "row" }, when(new Date(p.start))),
        priced(p.import_cost_eur, "hist-row-cost", p.import_kwh),
        priced(p.export_revenue_eur, "hist-row-revenue", p.export_kwh))))));
}

/** A part of a bar: one register's (or, on a meter without registers, the total's) energy, export negative. */
function part(points, key, sign) {
  return points.map((p) => (p[key] == null ? null : sign * p[key]));
}

const bucketName = (span) => (span === "day" ? fmt.clock : span === "year" ? (d) => fmt.month(d) : fmt.shortDay);

function chart(holder, series, span) {
  const points = series.points;
  const mids = points.map((p) => (Date.parse(p.start) + Date.parse(p.end)) / 2000);
  const half = points.length ? (Date.parse(points[0].end) - Date.parse(points[0].start)) / 2000 : 0;
  const registers = points.some((p) => p.import_t1_kwh != null || p.import_t2_kwh != null);
  const parts = registers ? [
    { label: "Import, day (T1)", values: part(points, "import_t1_kwh", 1), color: "--c-import-day", stack: "import" },
    { label: "Import, night (T2)", values: part(points, "import_t2_kwh", 1), color: "--c-import-night", stack: "import" },
    { label: "Export, day (T1)", values: part(points, "export_t1_kwh", -1), color: "--c-export-day", stack: "export" },
    { label: "Export, night (T2)", values: part(points, "export_t2_kwh", -1), color: "--c-export-night", stack: "export" },
  ] : [
    { label: "Import", values: part(points, "import_kwh", 1), color: "--c-import-day", stack: "import" },
    { label: "Export", values: part(points, "export_kwh", -1), color: "--c-export-day", stack: "export" },
  ];
  const when = bucketName(span);
  stackedBars(holder, {
    x: mids,
    parts,
    halfWidth: half,
    formatTick: span === "day" ? fmt.hourMinute : span === "year" ? fmt.shortMonth : fmt.dayMonth,
    formatY: (v) => fmt.withUnit(v, Math.abs(v) < 10 && v % 1 ? 2 : 0, "kWh"),
    formatValue: (v) => fmt.kwh(v == null ? null : Math.abs(v)),
    formatX: (v) => when(new Date((v - half) * 1000)),
  });
}

export function render(main, { device, params, link }) {
  let alive = true;
  const span = params.span in SPANS ? params.span : "day";
  const rule = SPANS[span];
  const start = rule.start(parseDay(params.at) ?? new Date());
  const end = rule.next(start, 1);
  const target = (d, s = span) => ({ view: "history", device, span: s, at: dayKey(d) });
  const tabs = h("ul", { class: "tabs" }, Object.entries(SPANS).map(([key, r]) =>
    h("li", {}, link(target(start, key), r.title, key === span ? { "aria-current": "page" } : {}))));
  const pager = h("div", { class: "pager" },
    link(target(rule.next(start, -1)), "← Previous", { rel: "prev" }),
    h("h1", { "data-testid": "hist-title" }, rule.label(start)),
    link(target(end), "Next →", { rel: "next" }));
  const hours = Math.round((end - start) / 3600000);
  const holder = figure(span === "day" ? `Energy per quarter-hour, ${hours} hours (kWh; import up, export down)`
    : `Energy per ${rule.bucket === "1mo" ? "month" : "day"} (kWh; import up, export down)`, { "data-testid": "hist-chart" });
  const body = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  const costs = h("div");
  fill(main, h("nav", { "aria-label": "Period" }, tabs), pager, body, holder, costs);

  getJson(devicePath(device, "/series"), { start: iso(start), end: iso(end), bucket: rule.bucket, tz: TZ }).then((series) => {
    if (!alive) return;
    holder.dataset.buckets = String(series.points.length);
    holder.dataset.hours = String(Math.round((Date.parse(series.end) - Date.parse(series.start)) / 3600000));
    fill(body, span === "day" ? h("p", { class: "muted", "data-testid": "hist-hours" }, `${holder.dataset.hours} hours`) : null, summary(series.points));
    fill(costs, costTable(series.points, span, span === "day" ? fmt.hourMinute : bucketName(span)));
    chart(holder, series, span);
  }, (error) => alive && fill(body, errorLine(error)));
  return () => {
    alive = false;
    holder.dispose?.();
  };
}
