// The inspector's entry point: the login, the top bar's tabs and the
// screens' lifecycles.

import { call, token, setToken, whenAuthFails } from "./api.js";
import { $ } from "./dom.js";
import { ConnectionsView } from "./connections.js";
import { TopicsView } from "./topics.js";
import { LogView } from "./log.js";
import { NodesView } from "./nodes.js";

const tabNames = ["connections", "topics", "log", "nodes"];
let current = "";
let session = false;

const shown = (name) => () => session && current === name;
const views = {
  connections: new ConnectionsView(shown("connections")),
  topics: new TopicsView(shown("topics"), (topic) => {
    location.hash = "#connections";
    views.connections.filterByTopic(topic);
  }),
  log: new LogView(shown("log")),
  nodes: new NodesView(shown("nodes")),
};

function tabFromHash() {
  const name = location.hash.replace(/^#/, "");
  return tabNames.includes(name) ? name : "connections";
}

function show(name) {
  if (current === "connections" && name !== "connections") views.connections.close();
  current = name;
  for (const t of tabNames) $(`view-${t}`).hidden = t !== name;
  for (const a of $("tabs").querySelectorAll("a[data-tab]")) {
    a.classList.toggle("active", a.dataset.tab === name);
    if (a.dataset.tab === name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const v = views[name];
  if (v.shown) v.shown();
  if (v.poll) v.poll.now();
}

function showLogin(message) {
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  $("token").value = "";
  $("token").focus();
}

// enter starts a session: the screens appear and start polling. noAuth
// means the API answered without a token, so there is nothing to log out
// of.
function enter(noAuth) {
  session = true;
  $("login").hidden = true;
  $("login-error").textContent = "";
  $("tabs").hidden = false;
  $("logout").hidden = noAuth;
  document.body.classList.add("in-session");
  for (const v of Object.values(views)) v.start();
  show(tabFromHash());
}

// leave ends the session: polling stops and the message tail is closed
// while the token is still known.
function leave() {
  if (!session) return;
  for (const v of Object.values(views)) v.stop();
  session = false;
  current = "";
  $("tabs").hidden = true;
  $("logout").hidden = true;
  document.body.classList.remove("in-session");
  for (const t of tabNames) $(`view-${t}`).hidden = true;
}

const refused = (e) => e.status === 401 || e.status === 403;

async function boot() {
  if (token()) {
    try {
      await call("GET", "/@nodes", { authCheck: false });
      enter(false);
      return;
    } catch (e) {
      if (!refused(e)) {
        showLogin(e.describe());
        return;
      }
      setToken("");
    }
  }
  try {
    await call("GET", "/@nodes", { withToken: false });
    enter(true);
  } catch (e) {
    showLogin(refused(e) ? "" : e.describe());
  }
}

whenAuthFails((e) => {
  if (!session) return;
  leave();
  setToken("");
  showLogin(`The management API refused the token (${e.describe()}); sign in again.`);
});

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const t = $("token").value.trim();
  const btn = $("login-btn");
  $("login-error").textContent = "";
  btn.disabled = true;
  try {
    await call("GET", "/@nodes", { token: t, authCheck: false });
    setToken(t);
    enter(false);
  } catch (e) {
    $("login-error").textContent = refused(e)
      ? `The management API refused this token (${e.describe()}).`
      : e.describe();
  } finally {
    btn.disabled = false;
  }
});

$("logout").addEventListener("click", () => {
  leave();
  setToken("");
  showLogin("Logged out. The token is forgotten.");
});

window.addEventListener("hashchange", () => session && show(tabFromHash()));
window.addEventListener("pagehide", () => views.connections.close());

boot();
