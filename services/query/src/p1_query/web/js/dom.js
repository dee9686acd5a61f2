// Elements built with properties and attributes only: no innerHTML (no markup from data) and no style
// attributes (the Content-Security-Policy allows no inline style; looks come from classes in app.css).

/** h("p", {class: "x"}, "text", child…): one element. Attributes named on… become listeners. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value == null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child == null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

const SVG = "http://www.w3.org/2000/svg";

/** An SVG element: sizes are attributes, which the policy allows (unlike style attributes). */
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value == null) continue;
    el.setAttribute(key === "className" ? "class" : key, String(value));
  }
  append(el, children);
  return el;
}

/** Replaces the children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A labelled figure: a term and its value (with unit). `id` becomes a data-testid for the tests. */
export function stat(label, value, id, extra = {}) {
  return h("div", { class: "stat", ...extra },
    h("dt", {}, label),
    h("dd", { "data-testid": id }, value));
}

/** The sentence shown in place of a view or part of one when something failed. */
export function errorLine(error) {
  return h("p", { class: "error", role: "alert" }, error?.sentence ?? String(error?.message ?? error));
}
