// Small helpers to build the page. Everything that comes from the API or
// from the user is set as text (textContent, attribute values), never
// parsed as HTML.

// el makes an element: attrs are set as attributes (class, title, data-*,
// ...) except "text", which becomes its textContent; children are elements
// or strings (text nodes).
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") e.textContent = String(v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) {
    if (c === undefined || c === null) continue;
    e.append(typeof c === "string" ? document.createTextNode(c) : c);
  }
  return e;
}

export function $(id) {
  return document.getElementById(id);
}

// showError shows err (an ApiError or any Error) in the element, or hides
// it when err is null.
export function showError(node, err) {
  if (!err) {
    node.hidden = true;
    node.textContent = "";
    return;
  }
  node.textContent = typeof err.describe === "function" ? err.describe() : String(err.message || err);
  node.hidden = false;
}

// emptyRow is a table row spanning cols columns saying text.
export function emptyRow(cols, text) {
  return el("tr", { class: "empty" }, el("td", { colspan: cols, text }));
}

const pad = (n, w = 2) => String(n).padStart(w, "0");

// clock formats an RFC 3339 time as local HH:MM:SS (with the date when it is
// not today, and milliseconds when ms is true).
export function clock(iso, ms = false) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso || "";
  let s = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  if (ms) s += `.${pad(d.getMilliseconds(), 3)}`;
  const now = new Date();
  if (d.toDateString() !== now.toDateString()) s = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${s}`;
  return s;
}

// ago formats how long before now an RFC 3339 time was: "now", "12s ago",
// "4m ago", "3h ago", "2d ago".
export function ago(iso) {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return "";
  return duration(Date.now() - t, "ago");
}

// duration formats ms milliseconds compactly, with suffix after it.
export function duration(ms, suffix = "") {
  const s = Math.max(0, Math.round(ms / 1000));
  const tail = suffix ? ` ${suffix}` : "";
  if (s < 1) return suffix ? "now" : `${Math.max(0, Math.round(ms))} ms`;
  if (s < 60) return `${s}s${tail}`;
  if (s < 3600) return `${Math.floor(s / 60)}m${tail}`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${tail}`;
  return `${Math.floor(s / 86400)}d${tail}`;
}

// num formats a count with thousands separators.
export function num(n) {
  return typeof n === "number" ? n.toLocaleString("en-US") : "–";
}

// timeCell is a table cell with a time: its clock, and both the absolute
// time and how long ago it was in its title.
export function timeCell(iso, relative = false) {
  if (!iso) return el("td", { class: "muted", text: "–" });
  return el("td", { class: "time", title: `${iso} (${ago(iso)})`, text: relative ? ago(iso) : clock(iso) });
}

// poller calls f now and then again period ms after each call finishes,
// while active() holds; stop() ends it. f's errors are its own to show.
export function poller(f, period, active = () => true) {
  let timer = null;
  let stopped = false;
  const run = async () => {
    timer = null;
    if (stopped) return;
    if (active()) {
      try {
        await f();
      } catch (e) {
        console.error(e);
      }
    }
    if (!stopped) timer = setTimeout(run, period);
  };
  run();
  return {
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
    // now runs f at once instead of at its next turn.
    now() {
      if (stopped) return;
      if (timer) {
        clearTimeout(timer);
        run();
      }
    },
  };
}
