// Calendar arithmetic in the browser's own time zone, which is also the `tz` every request names: a day
// is local midnight to local midnight, so a spring DST day is 23 hours long and an autumn one 25.

export const TZ = Intl.DateTimeFormat().resolvedOptions().timeZone;

const pad = (n, width = 2) => String(Math.trunc(Math.abs(n))).padStart(width, "0");

/** RFC 3339 with the local offset, whole seconds: what the API's `start`/`end` take. */
export function iso(d) {
  const offset = -d.getTimezoneOffset();
  const sign = offset >= 0 ? "+" : "-";
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:` +
    `${pad(d.getMinutes())}:${pad(d.getSeconds())}${sign}${pad(offset / 60)}:${pad(offset % 60)}`;
}

export const dayKey = (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
export const monthKey = (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}`;

/** "2026-10-25" → local midnight of that day; anything else → null. */
export function parseDay(text) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text ?? "");
  if (!m) return null;
  const d = new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  return Number.isNaN(d.getTime()) || dayKey(d) !== text ? null : d;
}

export const midnight = (d) => new Date(d.getFullYear(), d.getMonth(), d.getDate());
export const addDays = (d, n) => new Date(d.getFullYear(), d.getMonth(), d.getDate() + n);
export const addMonths = (d, n) => new Date(d.getFullYear(), d.getMonth() + n, 1);
export const monthStart = (d) => new Date(d.getFullYear(), d.getMonth(), 1);
export const yearStart = (d) => new Date(d.getFullYear(), 0, 1);

/** Monday of the week of `d` (ISO weeks). */
export function weekStart(d) {
  const back = (d.getDay() + 6) % 7;
  return addDays(midnight(d), -back);
}

export const unix = (d) => d.getTime() / 1000;
