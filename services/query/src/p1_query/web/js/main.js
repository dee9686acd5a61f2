// The one page: which view the URL names, the navigation, the device switcher and the session.
// State lives in the URL's query (`/?view=history&span=day&at=2026-10-25&device=…`), so every view is a
// deep link that a reload serves from `/` itself, and the History API gives the back button.

import { ApiError, getJson, loadFeatures, signOut } from "./api.js";
import { errorLine, fill, h } from "./dom.js";
import * as capacity from "./views/capacity.js";
import * as history from "./views/history.js";
import * as now from "./views/now.js";
import * as signin from "./views/signin.js";
import * as today from "./views/today.js";

const VIEWS = { now, today, history, capacity };
const TITLES = { now: "Now", today: "Today vs yesterday", history: "History", capacity: "Capacity" };

// Whether this browser signed in (the cookie is HttpOnly, so the page cannot see it): a page that never
// signed in shows the sign-in form at once instead of learning it from a refused request. A session that
// expired meanwhile still ends in one 401, which sends the page to the form as well.
const session_ = {
  known: () => localStorage.getItem("p1.signedIn") === "1",
  remember: () => localStorage.setItem("p1.signedIn", "1"),
  forget: () => localStorage.removeItem("p1.signedIn"),
};

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const session = document.getElementById("session");
let cleanup = null;
let devices = null;

export function link(params) {
  const u = new URL("/", location.origin);
  for (const [key, value] of Object.entries(params)) if (value != null && value !== "") u.searchParams.set(key, value);
  return u.pathname + u.search;
}

function current() {
  return Object.fromEntries(new URLSearchParams(location.search));
}

/** Goes to another state of the page: a new history entry, then the view drawn for it. */
export function go(params, { replace = false } = {}) {
  const target = link(params);
  if (replace) history_.replaceState(null, "", target);
  else history_.pushState(null, "", target);
  render();
}
const history_ = window.history;

/** An <a> that is a real link (a new tab works) and, clicked plainly, changes the view in place. */
export function routeLink(params, text, attrs = {}) {
  return h("a", {
    href: link(params),
    ...attrs,
    onclick: (e) => {
      if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
      e.preventDefault();
      go(params);
    },
  }, text);
}

function drawNav(params) {
  const view = params.view in VIEWS ? params.view : "now";
  fill(nav, h("ul", {}, Object.entries(TITLES).map(([key, title]) =>
    h("li", {}, routeLink({ view: key, device: params.device }, title, key === view ? { "aria-current": "page" } : {})))));
  const children = [];
  if (devices.length > 1) {
    const select = h("select", { id: "device", "aria-label": "Device", onchange: (e) => go({ ...params, device: e.target.value }) },
      devices.map((d) => h("option", { value: d.device_id, selected: d.device_id === params.device }, d.device_id)));
    children.push(select);
  }
  children.push(h("button", { type: "button", class: "link", onclick: leave }, "Sign out"));
  fill(session, ...children);
}

async function leave() {
  cleanup?.();
  cleanup = null;
  await signOut();
  session_.forget();
  devices = null;
  go({ view: "signin" });
}

function showSignIn(params) {
  fill(nav);
  fill(session);
  document.title = "Sign in · P1 energy";
  cleanup = signin.render(main, {
    onSignedIn: () => {
      session_.remember();
      devices = null;
      const next = { ...params, view: params.next ?? "now" };
      delete next.next;
      go(next, { replace: true });
    },
  });
}

async function render() {
  cleanup?.();
  cleanup = null;
  const params = current();
  if (params.view === "signin") return showSignIn(params);
  if (!session_.known()) return go({ ...params, view: "signin", next: params.view }, { replace: true });
  try {
    devices ??= await getJson("/v1/devices");
    await loadFeatures();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      session_.forget();
      return go({ ...params, view: "signin", next: params.view }, { replace: true });
    }
    fill(main, errorLine(error));
    return;
  }
  if (devices.length === 0) {
    fill(main, h("p", { class: "error", role: "alert" }, "This token reads no device yet: no meter has sent a reading."));
    return;
  }
  if (!devices.some((d) => d.device_id === params.device)) {
    return go({ ...params, device: devices[0].device_id }, { replace: true });
  }
  const view = params.view in VIEWS ? params.view : "now";
  drawNav({ ...params, view });
  document.title = `${TITLES[view]} · P1 energy`;
  document.body.dataset.view = view;
  const ctx = { device: params.device, params, go: (p) => go({ view, device: params.device, ...p }), link: routeLink };
  cleanup = VIEWS[view].render(main, ctx);
}

window.addEventListener("popstate", render);
window.addEventListener("p1:session-ended", () => {
  session_.forget();
  devices = null;
  go({ ...current(), view: "signin", next: current().view }, { replace: true });
});
render();
