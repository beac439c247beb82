// The Topics screen: topics with subscribers across the cluster
// (GET /@topics, a page at a time, refreshed every 2 s while shown) and a
// box to publish to one (POST /@topics/{topic}).

import { call, path, ApiError } from "./api.js";
import { $, el, emptyRow, num, poller } from "./dom.js";
import { PagedView } from "./paged.js";

export class TopicsView extends PagedView {
  constructor(isShown, showConnections) {
    super("topic", "/@topics");
    this.isShown = isShown;
    this.showConnections = showConnections;
    this.tbody = $("topic-table").tBodies[0];

    let debounce = null;
    $("topic-prefix").addEventListener("input", () => {
      clearTimeout(debounce);
      debounce = setTimeout(() => this.restart(), 300);
    });
    this.tbody.addEventListener("click", (ev) => {
      const link = ev.target.closest("button[data-topic]");
      if (link) {
        this.showConnections(link.dataset.topic);
        return;
      }
      const tr = ev.target.closest("tr[data-topic]");
      if (tr) $("pub-topic").value = tr.dataset.topic;
    });
    $("pub-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.publish();
    });
  }

  start() {
    this.poll = poller(() => this.refresh(), 2000, () => this.isShown() && !document.hidden);
  }

  stop() {
    if (this.poll) this.poll.stop();
    this.poll = null;
  }

  query() {
    return { prefix: $("topic-prefix").value };
  }

  render() {
    this.renderPage();
    const rows = this.items.map((t) => el("tr", { "data-topic": t.topic, title: "click to publish to this topic" },
      el("td", { class: "mono", text: t.topic }),
      el("td", { class: "num", text: num(t.subscribers) }),
      el("td", { class: "act" }, el("button", { type: "button", class: "link", "data-topic": t.topic, text: "connections →" }))));
    if (!rows.length) rows.push(emptyRow(3, this.error ? "" : "No topic with subscribers matches."));
    this.tbody.replaceChildren(...rows);
  }

  async publish() {
    const out = $("pub-result");
    const topic = $("pub-topic").value.trim();
    out.className = "result";
    out.textContent = "publishing…";
    try {
      const res = await call("POST", `/@topics/${path(topic)}`, { body: $("pub-body").value });
      const n = res && typeof res.delivered === "number" ? res.delivered : 0;
      out.textContent = `delivered to ${num(n)} connection${n === 1 ? "" : "s"}`;
      out.classList.add("ok");
      if (this.poll) this.poll.now();
    } catch (e) {
      out.textContent = e instanceof ApiError ? e.describe() : String(e);
      out.classList.add("bad");
    }
  }
}
