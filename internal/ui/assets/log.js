// The Log screen: recent authorizer decisions and refused handshakes of
// every node (GET /@log), refreshed every 2 s while shown.

import { call } from "./api.js";
import { $, el, showError, emptyRow, timeCell, clock, poller } from "./dom.js";

export class LogView {
  constructor(isShown) {
    this.isShown = isShown;
    $("log-size").addEventListener("change", () => this.poll && this.poll.now());
  }

  start() {
    this.poll = poller(() => this.refresh(), 2000, () => this.isShown() && !document.hidden);
  }

  stop() {
    if (this.poll) this.poll.stop();
    this.poll = null;
  }

  async refresh() {
    const maxResults = $("log-size").value;
    await Promise.all([
      this.load("authorizer", maxResults, "auth-log", "auth-error", 9, authRow, "No authorizer decisions yet."),
      this.load("refused", maxResults, "refused-log", "refused-error", 7, refusedRow, "No refused handshakes yet."),
    ]);
    $("log-live").textContent = `updated ${clock(new Date().toISOString())}`;
  }

  async load(kind, maxResults, table, errorId, cols, row, none) {
    const tbody = $(table).tBodies[0];
    try {
      const res = await call("GET", "/@log", { query: { kind, maxResults } });
      showError($(errorId), null);
      const rows = (res.items || []).map(row);
      if (!rows.length) rows.push(emptyRow(cols, none));
      tbody.replaceChildren(...rows);
    } catch (e) {
      showError($(errorId), e);
    }
  }
}

function authRow(e) {
  const decision = e.decision || "";
  return el("tr", { class: `decision-${decision}` },
    timeCell(e.time),
    el("td", { class: "node", text: e.nodeId }),
    el("td", { text: e.authorizer }),
    el("td", {}, el("span", { class: `badge ${decision}`, text: decision })),
    el("td", { class: "reason", title: e.reason, text: e.reason || "" }),
    el("td", { class: "num", text: typeof e.latencyMs === "number" ? `${e.latencyMs.toFixed(2)} ms` : "" }),
    el("td", { text: e.cacheHit ? "hit" : "miss", class: e.cacheHit ? "" : "muted" }),
    el("td", { class: "principal", text: e.principalId || "" }),
    el("td", { class: "mono", text: e.sourceIp || "" }));
}

function refusedRow(e) {
  return el("tr", {},
    timeCell(e.time),
    el("td", { class: "node", text: e.nodeId }),
    el("td", {}, el("span", { class: `badge status s${String(e.status)[0]}`, text: String(e.status) })),
    el("td", { class: "reason", title: e.reason, text: e.reason || "" }),
    el("td", { class: "mono", text: e.sourceIp || "" }),
    el("td", { class: "mono", text: e.path || "" }),
    el("td", { class: "ua", title: e.userAgent, text: e.userAgent || "" }));
}
