// Now: the newest reading live, today's energy so far, and the running quarter against the month's peak.

import { devicePath, getJson, has } from "../api.js";
import { errorLine, fill, h, stat, svg } from "../dom.js";
import { follow } from "../live.js";
import * as fmt from "../fmt.js";
import { TZ, addDays, iso, midnight } from "../time.js";

const FLOOR_KW = 2.5; // the capacity tariff's minimum billed peak (README "Capacity tariff")
const QUARTER_NOW = "/v1/devices/{device_id}/capacity/now";
const TODAY_REFRESH_MS = 60_000;

function direction(watts) {
  if (watts == null) return "No reading";
  return watts >= 0 ? "Importing" : "Exporting";
}

function powerCard(reading) {
  const p = reading?.power_w;
  const phases = [1, 2, 3]
    .map((n) => [n, reading?.[`power_l${n}_w`]])
    .filter(([, v]) => v != null);
  return h("section", { class: "card power", "aria-labelledby": "power-h" },
    h("h2", { id: "power-h" }, "Power now"),
    h("p", { class: "big" },
      h("span", { class: "dir" }, direction(p), " "),
      h("output", { "data-testid": "live-power", "data-value": p ?? "" }, fmt.power(p == null ? null : Math.abs(p)))),
    h("dl", { class: "stats" },
      stat("Import", fmt.power(p == null ? null : Math.max(p, 0)), "power-import"),
      stat("Export", fmt.power(p == null ? null : Math.max(-p, 0)), "power-export"),
      phases.map(([n, v]) => stat(`Phase L${n}`, `${fmt.power(v)}${v < 0 ? " (export)" : ""}`, `power-l${n}`))),
    h("p", { class: "muted", "data-testid": "reading-time" },
      reading ? `Reading of ${fmt.clock(new Date(reading.ts))}` : "Waiting for the first reading…"));
}

function todayCard(point, error) {
  return h("section", { class: "card", "aria-labelledby": "today-h" },
    h("h2", { id: "today-h" }, "Today so far"),
    error ? errorLine(error) : h("dl", { class: "stats" },
      stat("Imported", fmt.kwh(point?.import_kwh), "today-import"),
      stat("Exported", fmt.kwh(point?.export_kwh), "today-export"),
      stat("Gas", fmt.m3(point?.gas_m3), "today-gas"),
      stat("Water", fmt.m3(point?.water_m3), "today-water"),
      point?.import_cost_eur != null ? stat("Import cost", fmt.eur(point.import_cost_eur), "today-cost") : null,
      point?.export_revenue_eur != null ? stat("Export revenue", fmt.eur(point.export_revenue_eur), "today-revenue") : null));
}

/** The quarter as a horizontal gauge: scale to the largest of peak, floor, projection; marks for the
 * month's peak and the floor. Drawn in SVG with attributes (no inline style). */
function gauge(nowKw, projectedKw, peakKw) {
  const top = Math.max(FLOOR_KW, peakKw ?? 0, projectedKw ?? 0, nowKw ?? 0) * 1.1;
  const x = (kw) => Math.max(0, Math.min(100, (kw / top) * 100));
  const mark = (kw, cls, label) => kw == null ? null : svg("g", { class: cls },
    svg("line", { x1: x(kw), x2: x(kw), y1: 0, y2: 24 }),
    svg("title", {}, label));
  return svg("svg", { class: "gauge", viewBox: "0 0 100 24", preserveAspectRatio: "none", "aria-hidden": "true" },
    svg("rect", { class: "gauge-bg", x: 0, y: 4, width: 100, height: 16 }),
    projectedKw != null ? svg("rect", { class: "gauge-proj", x: 0, y: 4, width: x(projectedKw), height: 16 }) : null,
    svg("rect", { class: "gauge-now", x: 0, y: 4, width: x(nowKw ?? 0), height: 16 }),
    mark(FLOOR_KW, "gauge-floor", "2.5 kW floor"),
    mark(peakKw, "gauge-peak", "Month's peak"));
}

/** What the quarter card shows: capacity/now (fetched once, then the live stream's `quarter` events)
 * when the server has it, else the meter's own running quarter average and month peak in the reading. */
function quarterFacts(quarter, reading) {
  if (quarter) {
    return {
      source: "server",
      now: quarter.kw_so_far,
      projected: quarter.projected_kw,
      peak: quarter.month_peak_kw,
      headroom: quarter.headroom_kw,
      extra: quarter.extra_cost_eur,
    };
  }
  const w = (v) => (v == null ? null : v / 1000);
  const avg = w(reading?.avg_power_15m_w);
  const peak = w(reading?.month_peak_w);
  return { source: "meter", now: avg, projected: null, peak, headroom: avg == null ? null : Math.max(peak ?? 0, FLOOR_KW) - avg, extra: null };
}

function quarterCard(facts) {
  const over = facts.headroom != null && facts.headroom < 0;
  return h("section", { class: "card", "aria-labelledby": "quarter-h" },
    h("h2", { id: "quarter-h" }, "This quarter-hour"),
    gauge(facts.now, facts.projected, facts.peak),
    h("dl", { class: "stats" },
      stat(facts.source === "meter" ? "Average so far (meter)" : "Average so far", fmt.kw(facts.now), "quarter-now"),
      facts.projected != null ? stat("Projected at its end", fmt.kw(facts.projected), "quarter-projected") : null,
      stat("Month's peak", fmt.kw(facts.peak), "quarter-peak"),
      stat("Floor", fmt.kw(FLOOR_KW), "quarter-floor"),
      stat(over ? "Above the peak by" : "Headroom", fmt.kw(facts.headroom == null ? null : Math.abs(facts.headroom)), "quarter-headroom",
        over ? { class: "stat warn" } : {}),
      facts.extra ? stat("Extra cost if it holds", `${fmt.eur(facts.extra)}/month`, "quarter-extra", { class: "stat warn" }) : null));
}

const NOTIFICATIONS = "/v1/devices/{device_id}/notifications";
const WARNING_PAGES = 3; // results and warnings interleave: look this many pages back for a warning

/** The newest warning p1-notify sent (GET …/notifications, newest first, a page of NotificationPage at a
 * time), or null when none is in the first few pages. */
async function lastWarning(device) {
  let cursor = null;
  for (let page = 0; page < WARNING_PAGES; page++) {
    const body = await getJson(devicePath(device, "/notifications"), { limit: 200, cursor });
    const found = body.notifications.find((n) => n.kind === "warning");
    if (found) return found;
    cursor = body.next_cursor;
    if (cursor == null) break;
  }
  return null;
}

function warningCard(warning, error) {
  const head = h("h2", { id: "warning-h" }, "Last peak warning");
  if (error) return h("section", { class: "card", "aria-labelledby": "warning-h" }, head, errorLine(error));
  if (!warning) return h("section", { class: "card", "aria-labelledby": "warning-h" }, head, h("p", { class: "muted", "data-testid": "last-warning" }, "No warning sent."));
  const at = new Date(warning.sent_at ?? warning.claimed_at);
  return h("section", { class: "card", "aria-labelledby": "warning-h" }, head,
    h("p", { "data-testid": "last-warning" }, warning.message),
    h("p", { class: "muted" },
      h("time", { datetime: at.toISOString(), "data-testid": "last-warning-time" }, fmt.when(at)),
      ` · for the quarter from ${fmt.hourMinute(new Date(warning.quarter_start))}`,
      warning.sent_at == null ? " · not delivered" : ""));
}

export function render(main, { device }) {
  let alive = true;
  let reading = null;
  let quarter = null;
  let todayPoint = null;
  let todayError = null;
  let liveError = null;
  const power = h("div");
  const today = h("div");
  const q = h("div");
  const warn = h("div");
  fill(main, h("h1", { class: "visually-hidden" }, "Now"), h("div", { class: "grid" }, power, today, q, warn));

  const drawPower = () => fill(power, powerCard(reading), liveError ? errorLine(liveError) : null);
  const drawQuarter = () => fill(q, quarterCard(quarterFacts(quarter, reading)));
  const drawToday = () => fill(today, todayCard(todayPoint, todayError));
  drawPower();
  drawToday();
  drawQuarter();

  const loadToday = async () => {
    const start = midnight(new Date());
    try {
      const series = await getJson(devicePath(device, "/series"), { start: iso(start), end: iso(addDays(start, 1)), bucket: "1d", tz: TZ });
      todayPoint = series.points[0] ?? null;
      todayError = null;
    } catch (error) {
      todayError = error;
    }
    if (alive) drawToday();
  };
  loadToday();
  const todayTimer = setInterval(loadToday, TODAY_REFRESH_MS);

  if (has(QUARTER_NOW)) {
    getJson(devicePath(device, "/capacity/now"), { tz: TZ }).then((value) => {
      quarter = value;
      if (alive) drawQuarter();
    }, () => {});
  }
  if (has(NOTIFICATIONS)) {
    lastWarning(device).then((found) => alive && fill(warn, warningCard(found, null)),
      (error) => alive && fill(warn, warningCard(null, error)));
  }

  const stop = follow(device, {
    onReading: (value) => {
      reading = value;
      liveError = null;
      if (!alive) return;
      drawPower();
      if (!has(QUARTER_NOW)) drawQuarter();
    },
    onQuarter: (value) => {
      quarter = value;
      if (alive) drawQuarter();
    },
    onError: (error) => {
      liveError = error;
      if (alive) drawPower();
    },
  });

  return () => {
    alive = false;
    stop();
    clearInterval(todayTimer);
  };
}
