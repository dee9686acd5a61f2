// Placeholder of the dashboard (the web UI replaces it): shows which view the path names.
const main = document.getElementById("app");
const view = location.pathname.split("/")[1] || "now";
main.textContent = `p1-telemetry: ${view}`;
