// Capacity: the month's peak and when, its top quarters, the 12 months of the ledger with their source,
// the rolling average, the billable kW and the year's cost; the month's bill when the server has one.

import { devicePath, getJson, has } from "../api.js";
import { errorLine, fill, h, stat } from "../dom.js";
import * as fmt from "../fmt.js";
import { TZ, addMonths, monthKey } from "../time.js";

const BILL = "/v1/devices/{device_id}/bill";
const SOURCES = { measured: "measured", meter: "meter's own peak" };
const BILL_LINES = {
  energy_import_t1: "Energy, day (T1)",
  energy_import_t2: "Energy, night (T2)",
  dynamic: "Energy, dynamic price",
  export: "Export",
  capacity: "Capacity",
  fixed: "Fixed fee",
  vat: "VAT",
};

function parseMonth(text) {
  const m = /^(\d{4})-(\d{2})$/.exec(text ?? "");
  return m ? new Date(Number(m[1]), Number(m[2]) - 1, 1) : new Date(new Date().getFullYear(), new Date().getMonth(), 1);
}

/** A table in a box that scrolls sideways when a phone is narrower than it (the page itself never
 * does); the box is focusable so a keyboard can scroll it too. */
function table(caption, head, rows, id) {
  return h("div", { class: "scroll", role: "region", tabindex: "0", "aria-label": caption },
    h("table", { "data-testid": id },
      h("caption", {}, caption),
      h("thead", {}, h("tr", {}, head.map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c)))))));
}

function ledger(c) {
  return [
    h("dl", { class: "stats" },
      stat("Month's peak", fmt.kw(c.peak_kw), "cap-peak"),
      stat("When", c.peak_start ? fmt.when(new Date(c.peak_start)) : fmt.DASH, "cap-peak-when"),
      stat("Meter's own peak", fmt.kw(c.meter_peak_kw), "cap-meter-peak"),
      stat("12-month average", fmt.kw(c.rolling_12m_avg_kw), "cap-avg"),
      stat("Billable", fmt.kw(c.billable_kw), "cap-billable"),
      stat("Price", `${fmt.eur(c.price_eur_per_kw_year)}/kW/year`, "cap-price"),
      stat("Cost per year", fmt.eur(c.cost_eur_per_year), "cap-cost")),
    c.meter_peak_differs ? h("p", { class: "warn" }, "Our peak and the meter's differ by more than 2 %.") : null,
    h("div", { class: "tables" },
      table("Top quarter-hours of the month", ["Quarter", "Demand"],
        c.top_quarters.map((q) => [fmt.when(new Date(q.start)), fmt.kw(q.kw)]), "cap-top"),
      table("The 12 months", ["Month", "Peak", "Counted", "Source"],
        c.months.map((m) => [fmt.monthKeyName(m.month), fmt.kw(m.peak_kw), fmt.kw(m.counted_kw), SOURCES[m.source] ?? m.source]), "cap-months")),
  ];
}

function quantity(l, currency) {
  if (l.unit === "EUR") return fmt.eur(l.quantity, currency);
  return fmt.withUnit(l.quantity, l.unit === "month" ? 2 : 3, l.unit === "month" ? "month" : l.unit);
}

function price(l, currency) {
  if (l.kind === "vat") return fmt.percent(l.unit_price);
  if (l.kind === "capacity") return fmt.unitPrice(l.unit_price, currency, "kW/month");
  return fmt.unitPrice(l.unit_price, currency, l.unit);
}

/** The month's bill (GET …/bill): a row per line, the plan named when several were in force; for the
 * running month the energy so far and the projection to its end. */
function bill(b) {
  const money = (v) => fmt.eur(v, b.currency);
  const name = (l) => `${BILL_LINES[l.kind] ?? l.kind}${b.plans.length > 1 && l.plan ? ` (${l.plan})` : ""}`;
  return h("section", { class: "card bill", "aria-labelledby": "bill-h" },
    h("h2", { id: "bill-h" }, b.partial ? "This month's bill so far" : "The month's bill"),
    table(b.plans.length ? `Plan${b.plans.length > 1 ? "s" : ""}: ${b.plans.join(", ")}` : "No tariff plan covers this month",
      ["Line", "Quantity × price", "Amount"],
      b.lines.map((l) => [name(l), [h("span", { class: "amount" }, quantity(l, b.currency)), h("span", { class: "muted small" }, `× ${price(l, b.currency)}`)], money(l.amount_eur)]), "bill-lines"),
    h("dl", { class: "stats" },
      stat("Excl. VAT", money(b.subtotal_eur), "bill-subtotal"),
      stat("VAT", money(b.vat_eur), "bill-vat"),
      stat(b.partial ? "Total so far" : "Total", money(b.total_eur), "bill-total"),
      b.partial && b.projected_total_eur != null ? stat("Projected for the month", money(b.projected_total_eur), "bill-projected") : null),
    b.complete ? null : h("p", { class: "warn" }, "Some energy could not be priced (no plan or no market price), so this is too low."));
}

export function render(main, { device, params, link }) {
  let alive = true;
  const month = parseMonth(params.month);
  const key = monthKey(month);
  const target = (d) => ({ view: "capacity", device, month: monthKey(d) });
  const body = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  const billBox = h("div");
  fill(main,
    h("div", { class: "pager" },
      link(target(addMonths(month, -1)), "← Previous", { rel: "prev" }),
      h("h1", { "data-testid": "cap-title" }, `Capacity, ${fmt.month(month)}`),
      link(target(addMonths(month, 1)), "Next →", { rel: "next" })),
    h("section", { class: "card" }, body),
    billBox);
  getJson(devicePath(device, "/capacity"), { month: key, tz: TZ })
    .then((c) => alive && fill(body, ledger(c)), (error) => alive && fill(body, errorLine(error)));
  if (has(BILL)) {
    getJson(devicePath(device, "/bill"), { month: key, tz: TZ })
      .then((b) => alive && fill(billBox, bill(b)), (error) => alive && fill(billBox, errorLine(error)));
  }
  return () => {
    alive = false;
  };
}
