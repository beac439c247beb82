// Paging of a listing a page at a time: the cursors seen so far, and the
// fetch and page controls shared by the Connections and Topics screens.

import { call } from "./api.js";
import { $, showError, clock } from "./dom.js";

// Pager keeps the cursors of a paged listing client-side: the nextToken
// that starts each page seen so far, so that Prev goes back without the API
// having to page backwards.
export class Pager {
  constructor() {
    this.reset();
  }

  reset() {
    this.tokens = [""];
    this.index = 0;
    this.next = "";
  }

  get token() {
    return this.tokens[this.index];
  }

  // seen records the nextToken of the page just shown.
  seen(nextToken) {
    this.next = nextToken || "";
  }

  forward() {
    if (!this.next) return false;
    this.tokens.length = this.index + 1;
    this.tokens.push(this.next);
    this.index++;
    this.next = "";
    return true;
  }

  back() {
    if (this.index === 0) return false;
    this.index--;
    this.next = "";
    return true;
  }
}

// PagedView is the base of a screen listing path a page at a time. The
// elements are named by prefix: <prefix>-size (page size), -prev, -next,
// -page (position), -error and -live (last update). A subclass supplies
// query() (the filter; maxResults and nextToken are added) and render(),
// which calls renderPage(); the subclass's poller is this.poll.
export class PagedView {
  constructor(prefix, path) {
    this.prefix = prefix;
    this.path = path;
    this.pager = new Pager();
    this.items = [];
    this.error = null;
    this.generation = 0;
    this.poll = null;
    this.part("size").addEventListener("change", () => this.restart());
    this.part("prev").addEventListener("click", () => this.pager.back() && this.reload());
    this.part("next").addEventListener("click", () => this.pager.forward() && this.reload());
  }

  part(name) {
    return $(`${this.prefix}-${name}`);
  }

  // restart goes back to the first page, as after a filter change.
  restart() {
    this.pager.reset();
    this.reload();
  }

  // reload fetches the current page now; a response to an earlier request
  // is dropped.
  reload() {
    this.generation++;
    this.render();
    if (this.poll) this.poll.now();
  }

  async refresh() {
    const gen = this.generation;
    const query = { ...this.query(), maxResults: this.part("size").value, nextToken: this.pager.token };
    try {
      const res = await call("GET", this.path, { query });
      if (gen !== this.generation) return;
      this.items = res.items || [];
      this.pager.seen(res.nextToken);
      this.error = null;
      this.part("live").textContent = `updated ${clock(new Date().toISOString())}`;
    } catch (e) {
      if (gen !== this.generation) return;
      this.error = e;
      this.items = [];
      this.pager.seen("");
    }
    this.render();
  }

  // renderPage shows the error, the page position and the Prev and Next
  // buttons' state.
  renderPage() {
    showError(this.part("error"), this.error);
    const size = Number(this.part("size").value);
    const first = this.pager.index * size;
    this.part("page").textContent = this.items.length
      ? `page ${this.pager.index + 1} · ${first + 1}–${first + this.items.length}`
      : `page ${this.pager.index + 1}`;
    this.part("prev").disabled = this.pager.index === 0;
    this.part("next").disabled = !this.pager.next;
  }
}
