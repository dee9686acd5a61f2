// Numbers and times for the browser's locale (Intl), always with their unit. A missing value is a dash,
// never 0: "no data" and "nothing flowed" are different facts.

const formats = new Map();
function number(min, max) {
  const key = `${min}:${max}`;
  if (!formats.has(key)) {
    formats.set(key, new Intl.NumberFormat(undefined, { minimumFractionDigits: min, maximumFractionDigits: max }));
  }
  return formats.get(key);
}

const NBSP = "\u00a0";
export const DASH = "—";

export function withUnit(value, digits, unit) {
  if (value == null || !Number.isFinite(value)) return DASH;
  return `${number(digits, digits).format(value)}${NBSP}${unit}`;
}

/** Power: whole watts below 10 kW, kW with two decimals above. */
export function power(watts) {
  if (watts == null || !Number.isFinite(watts)) return DASH;
  return Math.abs(watts) < 10000 ? withUnit(Math.round(watts), 0, "W") : withUnit(watts / 1000, 2, "kW");
}

export const kw = (value) => withUnit(value, 3, "kW");
export const kwh = (value) => withUnit(value, value != null && Math.abs(value) >= 100 ? 1 : 3, "kWh");
export const m3 = (value) => withUnit(value, 3, "m³");
export const seconds = (value) => withUnit(value, 0, "s");

const monies = new Map();
function moneyFormat(currency, digits) {
  const key = `${currency}:${digits}`;
  if (!monies.has(key)) {
    const exact = digits == null ? {} : { minimumFractionDigits: 2, maximumFractionDigits: digits };
    monies.set(key, new Intl.NumberFormat(undefined, { style: "currency", currency, ...exact }));
  }
  return monies.get(key);
}

/** Money in the currency's own format (€1,234.56 or 1.234,56 €), to the cent. */
export function eur(value, currency = "EUR") {
  if (value == null || !Number.isFinite(value)) return DASH;
  return moneyFormat(currency, null).format(value);
}

/** A unit price: up to 4 decimals (€0.301/kWh), with what it is per. */
export function unitPrice(value, currency, unit) {
  if (value == null || !Number.isFinite(value)) return DASH;
  return `${moneyFormat(currency, 4).format(value)}/${unit}`;
}

export function percent(value) {
  if (value == null || !Number.isFinite(value)) return DASH;
  return new Intl.NumberFormat(undefined, { style: "percent", maximumFractionDigits: 2 }).format(value);
}

const dateTimes = new Map();
function dateFormat(options) {
  const key = JSON.stringify(options);
  if (!dateTimes.has(key)) dateTimes.set(key, new Intl.DateTimeFormat(undefined, options));
  return dateTimes.get(key);
}

export const clock = (d) => dateFormat({ hour: "2-digit", minute: "2-digit", second: "2-digit" }).format(d);
export const when = (d) => dateFormat({ weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" }).format(d);
export const day = (d) => dateFormat({ weekday: "long", day: "numeric", month: "long", year: "numeric" }).format(d);
export const shortDay = (d) => dateFormat({ weekday: "short", day: "numeric", month: "short" }).format(d);
export const month = (d) => dateFormat({ month: "long", year: "numeric" }).format(d);
export const hourMinute = (d) => dateFormat({ hour: "2-digit", minute: "2-digit" }).format(d);
export const dayMonth = (d) => dateFormat({ day: "numeric", month: "short" }).format(d);
export const shortMonth = (d) => dateFormat({ month: "short" }).format(d);
export const year = (d) => dateFormat({ year: "numeric" }).format(d);

/** "2026-10" → "October 2026" in the browser's language. */
export function monthKeyName(key) {
  const [y, m] = key.split("-").map(Number);
  return month(new Date(y, m - 1, 1));
}
