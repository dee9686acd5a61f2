// The newest reading as it comes: the server's event stream (`GET …/live`, events `reading` and
// `quarter`) when the server has it, else the realtime answer polled every second. One follower at a
// time; `stop()` closes it (a view change or sign-out), and body[data-live] says its state for tests.

import { devicePath, getJson, has } from "./api.js";

const LIVE = "/v1/devices/{device_id}/live";
const POLL_MS = 1000;

function mark(state) {
  document.body.dataset.live = state;
}

export function follow(device, { onReading, onQuarter, onError }) {
  let stopped = false;
  let source = null;
  let timer = null;

  const poll = async () => {
    if (stopped) return;
    try {
      onReading(await getJson(devicePath(device, "/realtime")));
    } catch (error) {
      if (!stopped) onError(error);
    }
    if (!stopped) timer = setTimeout(poll, POLL_MS);
  };

  if (has(LIVE) && typeof EventSource === "function") {
    source = new EventSource(devicePath(device, "/live"));
    mark("stream");
    let failures = 0;
    source.addEventListener("reading", (e) => {
      failures = 0;
      onReading(JSON.parse(e.data));
    });
    source.addEventListener("quarter", (e) => onQuarter?.(JSON.parse(e.data)));
    source.addEventListener("end", (e) => {
      // The server ends the stream for good when the token was revoked (a reconnect would be refused):
      // the page signs out. A server restart ("stopping") is left to EventSource's own reconnect.
      if (JSON.parse(e.data).reason === "revoked") {
        source.close();
        source = null;
        mark("closed");
        window.dispatchEvent(new CustomEvent("p1:session-ended"));
      }
    });
    source.addEventListener("error", () => {
      // EventSource reconnects by itself after a dropped connection. CLOSED means it gave up (the
      // server refused), and a stream that fails again before delivering anything is not working
      // (a proxy that buffers or cuts it): fall back to polling, which also reports why, if it fails.
      failures += 1;
      if (stopped || source === null) return;
      if (source.readyState === EventSource.CLOSED || failures >= 2) {
        source.close();
        source = null;
        mark("polling");
        poll();
      }
    });
  } else {
    mark("polling");
    poll();
  }

  return function stop() {
    stopped = true;
    source?.close();
    clearTimeout(timer);
    mark("closed");
  };
}
