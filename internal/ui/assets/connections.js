// The Connections screen: the cluster's connections a page at a time
// (GET /@connections, refreshed every second while shown), and one
// connection's detail with its message tail, a send box and a disconnect
// button.

import { call, path, ApiError } from "./api.js";
import { $, el, showError, emptyRow, timeCell, clock, ago, poller } from "./dom.js";
import { PagedView } from "./paged.js";

const tailPollMs = 500;
const tailRenewMs = 20000;
const tailKeep = 500;

export class ConnectionsView extends PagedView {
  constructor(isShown) {
    super("conn", "/@connections");
    this.isShown = isShown;
    this.selected = null;
    this.tail = null;
    this.tbody = $("conn-table").tBodies[0];

    let debounce = null;
    const refilter = () => {
      clearTimeout(debounce);
      debounce = setTimeout(() => this.restart(), 300);
    };
    $("conn-principal").addEventListener("input", refilter);
    $("conn-topic").addEventListener("input", refilter);
    this.tbody.addEventListener("click", (ev) => {
      const tr = ev.target.closest("tr[data-id]");
      if (tr) this.open(tr.dataset.id);
    });
    $("detail-close").addEventListener("click", () => this.close());
    $("send-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.send();
    });
    $("close-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.disconnect();
    });
  }

  start() {
    this.poll = poller(() => this.refresh(), 1000, () => this.isShown() && !document.hidden);
  }

  stop() {
    if (this.poll) this.poll.stop();
    this.poll = null;
    this.close();
  }

  // filterByTopic shows the connections subscribed to topic.
  filterByTopic(topic) {
    $("conn-principal").value = "";
    $("conn-topic").value = topic;
    this.restart();
  }

  query() {
    return { principal: $("conn-principal").value.trim(), topic: $("conn-topic").value.trim() };
  }

  render() {
    this.renderPage();
    const rows = this.items.map((c) => this.row(c));
    if (!rows.length) rows.push(emptyRow(8, this.error ? "" : "No connections match."));
    this.tbody.replaceChildren(...rows);
    const sel = this.selected && this.items.find((c) => c.connectionId === this.selected.connectionId);
    if (sel) {
      this.selected = sel;
      this.renderInfo();
    }
  }

  row(c) {
    const auth = context(c.authorizer);
    const topics = c.topics || [];
    const tr = el("tr", { "data-id": c.connectionId, class: this.selected && this.selected.connectionId === c.connectionId ? "selected" : null },
      el("td", { class: "mono id", text: c.connectionId }),
      el("td", { class: c.principalId ? "principal" : "muted", text: c.principalId || "anonymous" }),
      el("td", { class: "ctx", title: auth, text: auth || "–" }),
      el("td", { class: "mono c-ip", text: (c.identity && c.identity.sourceIp) || "" }),
      el("td", { class: "node", title: c.nodeId, text: c.nodeId || "" }),
      timeCell(c.connectedAt),
      timeCell(c.lastActiveAt, true),
      el("td", { class: "topics", title: topics.join("\n"), text: topics.length ? topics.join(", ") : "–" }));
    return tr;
  }

  open(id) {
    if (this.selected && this.selected.connectionId === id) return;
    this.close();
    this.selected = this.items.find((c) => c.connectionId === id) || { connectionId: id };
    $("conn-detail").hidden = false;
    $("conn-split").classList.add("with-detail");
    $("detail-id").textContent = id;
    $("send-result").textContent = "";
    $("close-result").textContent = "";
    $("close-result").className = "result";
    $("send-result").className = "result";
    this.renderInfo();
    this.render();
    this.tail = new Tail(id);
    this.tail.start();
  }

  close() {
    if (this.tail) this.tail.stop();
    this.tail = null;
    if (!this.selected) return;
    this.selected = null;
    $("conn-detail").hidden = true;
    $("conn-split").classList.remove("with-detail");
    this.render();
  }

  renderInfo() {
    const c = this.selected;
    const rows = [
      ["Principal", c.principalId || "anonymous"],
      ["Node", c.nodeId],
      ["Source IP", c.identity && c.identity.sourceIp],
      ["User agent", c.identity && c.identity.userAgent],
      ["Connected", c.connectedAt && `${clock(c.connectedAt)} (${ago(c.connectedAt)})`],
      ["Last active", c.lastActiveAt && `${clock(c.lastActiveAt)} (${ago(c.lastActiveAt)})`],
      ["Topics", (c.topics || []).join(", ") || "–"],
    ];
    const nodes = [];
    for (const [k, v] of rows) {
      if (v === undefined || v === null || v === "") continue;
      nodes.push(el("dt", { text: k }), el("dd", { text: v, title: v }));
    }
    nodes.push(el("dt", { text: "Authorizer context" }), el("dd", { class: "wrap", text: context(c.authorizer) || "–" }));
    $("detail-info").replaceChildren(...nodes);
  }

  async send() {
    if (!this.selected) return;
    const out = $("send-result");
    const body = $("send-body").value;
    out.className = "result";
    out.textContent = "sending…";
    try {
      await call("POST", `/@connections/${path(this.selected.connectionId)}`, { body });
      out.textContent = `sent ${new TextEncoder().encode(body).length} bytes at ${clock(new Date().toISOString())}`;
      out.classList.add("ok");
    } catch (e) {
      out.textContent = e instanceof ApiError ? e.describe() : String(e);
      out.classList.add("bad");
    }
  }

  async disconnect() {
    if (!this.selected) return;
    const out = $("close-result");
    const code = $("close-code").value.trim();
    const reason = $("close-reason").value;
    out.className = "result";
    out.textContent = "disconnecting…";
    try {
      await call("DELETE", `/@connections/${path(this.selected.connectionId)}`, { query: { code, reason } });
      out.textContent = `disconnected with code ${code || 1000}`;
      out.classList.add("ok");
      if (this.poll) this.poll.now();
    } catch (e) {
      out.textContent = e instanceof ApiError ? e.describe() : String(e);
      out.classList.add("bad");
    }
  }
}

// context is an authorizer's output without its principalId and the
// integrationLatency AWS adds, compactly: "role=admin · level=3".
function context(auth) {
  if (!auth) return "";
  return Object.entries(auth)
    .filter(([k]) => k !== "principalId" && k !== "integrationLatency")
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(" · ");
}

// Tail shows one connection's message tail: it opens it (PUT), renews it
// every 20 s, reads new messages every 500 ms and closes it (DELETE) when
// stopped.
class Tail {
  constructor(id) {
    this.id = id;
    this.after = 0;
    this.stopped = false;
    this.list = $("tail-list");
    this.list.replaceChildren();
    this.count = 0;
    this.status("opening…");
    showError($("tail-error"), null);
  }

  url() {
    return `/@connections/${path(this.id)}/tail`;
  }

  async start() {
    if (!(await this.open())) return;
    this.renew = setInterval(() => this.open(), tailRenewMs);
    this.read();
  }

  // open starts or renews the tail; false when it cannot be (the error is
  // shown and the tail stopped).
  async open() {
    if (this.stopped) return false;
    try {
      await call("PUT", this.url(), { authCheck: false });
      return true;
    } catch (e) {
      this.fail(e);
      return false;
    }
  }

  async read() {
    this.timer = null;
    if (this.stopped) return;
    try {
      const res = await call("GET", this.url(), { query: { after: this.after }, authCheck: false });
      if (this.stopped) return;
      showError($("tail-error"), null);
      if (res.dropped) this.append(el("li", { class: "dropped", text: `${res.dropped} message(s) dropped before they were read` }));
      for (const m of res.items || []) this.append(item(m));
      if (typeof res.next === "number") this.after = res.next;
      this.status(`live · ${this.count} message(s)`);
    } catch (e) {
      if (this.stopped) return;
      if (e.status === 404) {
        // The tail lapsed (or its node restarted): open it again.
        if (!(await this.open())) return;
      } else if (e.status === 410 || e.status === 403) {
        this.fail(e);
        return;
      } else {
        showError($("tail-error"), e);
      }
    }
    if (!this.stopped) this.timer = setTimeout(() => this.read(), tailPollMs);
  }

  append(node) {
    const atEnd = this.list.scrollTop + this.list.clientHeight >= this.list.scrollHeight - 4;
    this.list.append(node);
    if (node.classList.contains("msg")) this.count++;
    while (this.list.childElementCount > tailKeep) this.list.firstElementChild.remove();
    if (atEnd) this.list.scrollTop = this.list.scrollHeight;
  }

  status(text) {
    $("tail-status").textContent = text;
  }

  fail(e) {
    showError($("tail-error"), e);
    this.status(e.status === 410 ? "connection closed" : "stopped");
    this.halt();
  }

  halt() {
    this.stopped = true;
    clearInterval(this.renew);
    clearTimeout(this.timer);
  }

  stop() {
    const wasOpen = !this.stopped;
    this.halt();
    if (wasOpen) call("DELETE", this.url(), { authCheck: false, keepalive: true }).catch(() => {});
  }
}

// item is one tail message as a list item.
function item(m) {
  const dir = m.direction === "out" ? "out" : "in";
  const meta = [`${m.bytes} B`];
  if (m.binary) meta.push("binary, base64");
  if (m.truncated) meta.push("truncated");
  return el("li", { class: `msg ${dir}`, "data-seq": m.seq },
    el("span", { class: "t", title: m.time, text: clock(m.time, true) }),
    el("span", { class: `dir ${dir}`, text: dir }),
    el("span", { class: "data", text: m.data }),
    el("span", { class: "meta", text: meta.join(" · ") }));
}
