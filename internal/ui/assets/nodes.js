// The Nodes screen and the cluster summary in the top bar: GET /@nodes
// every 2 s, whatever screen is shown, so that the charts hold the last
// five minutes of connections and messages per second.

import { call } from "./api.js";
import { $, el, showError, emptyRow, timeCell, clock, num, poller } from "./dom.js";
import { drawChart, palette } from "./chart.js";

const windowMs = 5 * 60 * 1000;

export class NodesView {
  constructor(isShown) {
    this.isShown = isShown;
    this.samples = [];
    this.last = null;
    window.addEventListener("resize", () => this.isShown() && this.draw());
  }

  start() {
    this.samples = [];
    this.poll = poller(() => this.refresh(), 2000);
  }

  stop() {
    if (this.poll) this.poll.stop();
    this.poll = null;
    $("cluster").hidden = true;
  }

  // shown redraws the screen when it becomes visible.
  shown() {
    this.render();
  }

  async refresh() {
    try {
      const res = await call("GET", "/@nodes");
      this.last = res;
      this.error = null;
      this.record(res);
    } catch (e) {
      this.error = e;
    }
    this.summary();
    if (this.isShown()) this.render();
  }

  record(res) {
    const t = Date.parse(res.at) || Date.now();
    const nodes = new Map();
    for (const n of res.nodes || []) nodes.set(n.nodeId, n);
    this.samples.push({ t, nodes });
    while (this.samples.length && this.samples[0].t < t - windowMs - 10000) this.samples.shift();
  }

  summary() {
    const c = $("cluster");
    c.hidden = false;
    if (this.error || !this.last) {
      c.textContent = this.error ? "cluster: unavailable" : "";
      c.className = "cluster bad";
      c.title = this.error ? this.error.describe() : "";
      return;
    }
    const nodes = this.last.nodes || [];
    const self = nodes.find((n) => n.self);
    const down = nodes.filter((n) => !n.reachable).length;
    const conns = nodes.reduce((a, n) => a + (n.connections || 0), 0);
    let text = `${nodes.length} node${nodes.length === 1 ? "" : "s"} · ${num(conns)} connection${conns === 1 ? "" : "s"}`;
    if (down) text += ` · ${down} unreachable`;
    if (self) text += ` · via ${self.nodeId}`;
    c.textContent = text;
    c.className = down ? "cluster warn" : "cluster";
    c.title = "";
  }

  render() {
    showError($("nodes-error"), this.error);
    const res = this.last;
    const tbody = $("nodes-table").tBodies[0];
    if (res) {
      $("nodes-at").textContent = `as of ${clock(res.at)}, answered by ${((res.nodes || []).find((n) => n.self) || {}).nodeId || "?"}`;
      $("nodes-live").textContent = `updated ${clock(new Date().toISOString())}`;
      const rows = (res.nodes || []).map((n) => el("tr", { "data-node": n.nodeId, class: n.reachable ? null : "unreachable" },
        el("td", { class: "node" }, n.nodeId, n.self ? el("span", { class: "tag", text: "self" }) : null),
        el("td", {}, el("span", { class: `badge ${n.reachable ? "allow" : "deny"}`, text: n.reachable ? "yes" : "unreachable" })),
        el("td", { class: "num", text: typeof n.heartbeatAgeMs === "number" ? age(n.heartbeatAgeMs) : "–" }),
        el("td", { class: "num", text: num(n.connections) }),
        el("td", { class: "num", text: num(n.subscriptions) }),
        el("td", { class: "num", text: num(n.messagesReceived) }),
        el("td", { class: "num", text: num(n.messagesSent) }),
        timeCell(n.startedAt)));
      if (!rows.length) rows.push(emptyRow(8, "No nodes."));
      tbody.replaceChildren(...rows);
    }
    this.draw();
  }

  draw() {
    const ids = [...new Set(this.samples.flatMap((s) => [...s.nodes.keys()]))].sort();
    const conns = ids.map((id, i) => ({
      label: id,
      color: palette[i % palette.length],
      points: this.samples.filter((s) => s.nodes.get(id) && s.nodes.get(id).reachable)
        .map((s) => ({ t: s.t, v: s.nodes.get(id).connections || 0 })),
    }));
    if (ids.length > 1) {
      conns.push({
        label: "total",
        color: "#111827",
        points: this.samples.map((s) => ({ t: s.t, v: [...s.nodes.values()].reduce((a, n) => a + (n.connections || 0), 0) })),
      });
    }
    drawChart($("chart-conns"), conns, { windowMs, format: (v) => num(Math.round(v)) });

    const received = [];
    const sent = [];
    for (let i = 1; i < this.samples.length; i++) {
      const a = this.samples[i - 1];
      const b = this.samples[i];
      const dt = (b.t - a.t) / 1000;
      if (dt <= 0) continue;
      let r = 0;
      let s = 0;
      let any = false;
      for (const [id, n] of b.nodes) {
        const p = a.nodes.get(id);
        if (!p || !p.reachable || !n.reachable) continue;
        // A counter that went back is a restarted node: no rate this time.
        if (n.messagesReceived < p.messagesReceived || n.messagesSent < p.messagesSent) continue;
        r += (n.messagesReceived - p.messagesReceived) / dt;
        s += (n.messagesSent - p.messagesSent) / dt;
        any = true;
      }
      if (!any) continue;
      received.push({ t: b.t, v: r });
      sent.push({ t: b.t, v: s });
    }
    drawChart($("chart-msgs"), [
      { label: "received/s", color: palette[0], points: received },
      { label: "sent/s", color: palette[1], points: sent },
    ], { windowMs, format: rate });
  }
}

function age(ms) {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

function rate(v) {
  if (v >= 100) return num(Math.round(v));
  if (v >= 10) return v.toFixed(0);
  return v.toFixed(1).replace(/\.0$/, "");
}
