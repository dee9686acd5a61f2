// Today vs yesterday: the power of each minute of both days on one axis (yesterday's minutes moved onto
// today's clock by their time since midnight, so 18:00 lies over 18:00; a DST day's extra or missing
// hour shifts what follows it by that hour).

import { devicePath, getJson } from "../api.js";
import { figure, lines } from "../chart.js";
import { errorLine, fill, h } from "../dom.js";
import * as fmt from "../fmt.js";
import { TZ, addDays, iso, midnight, unix } from "../time.js";

async function day(device, start) {
  return getJson(devicePath(device, "/series"), { start: iso(start), end: iso(addDays(start, 1)), bucket: "1m", tz: TZ });
}

/** The minutes' average power by minute since the day's start (null where no reading: a gap). */
function byMinute(series) {
  const start = Date.parse(series.start);
  const out = new Map();
  for (const p of series.points) out.set(Math.round((Date.parse(p.start) - start) / 60000), p.power_avg_w);
  return out;
}

export function render(main, { device }) {
  let alive = true;
  const holder = figure("Power per minute, today and yesterday (W; positive is import, negative export)", { "data-testid": "today-chart" });
  const status = h("p", { class: "muted" }, "Loading…");
  fill(main, h("h1", {}, "Today vs yesterday"), status, holder);
  const todayStart = midnight(new Date());
  Promise.all([day(device, todayStart), day(device, addDays(todayStart, -1))]).then(([today, yesterday]) => {
    if (!alive) return;
    const t = byMinute(today);
    const y = byMinute(yesterday);
    const minutes = Math.max(t.size, y.size);
    const x = Array.from({ length: minutes }, (_, m) => unix(todayStart) + m * 60);
    const values = (map) => x.map((_, m) => map.get(m) ?? null);
    const todayValues = values(t);
    const yesterdayValues = values(y);
    status.textContent = `Today ${fmt.kwh(sum(today, "import_kwh"))} imported, ${fmt.kwh(sum(today, "export_kwh"))} exported; ` +
      `yesterday ${fmt.kwh(sum(yesterday, "import_kwh"))} imported, ${fmt.kwh(sum(yesterday, "export_kwh"))} exported.`;
    holder.dataset.points = String(todayValues.filter((v) => v != null).length);
    lines(holder, {
      x,
      formatTick: fmt.hourMinute,
      formatY: (v) => fmt.withUnit(v, 0, "W"),
      formatValue: (v) => fmt.power(v),
      series: [
        { label: "Yesterday", values: yesterdayValues, color: "--c-yesterday" },
        { label: "Today", values: todayValues, color: "--c-today" },
      ],
    });
  }, (error) => alive && fill(main, h("h1", {}, "Today vs yesterday"), errorLine(error)));
  return () => {
    alive = false;
    holder.dispose?.();
  };
}

function sum(series, key) {
  let total = null;
  for (const p of series.points) if (p[key] != null) total = (total ?? 0) + p[key];
  return total;
}
