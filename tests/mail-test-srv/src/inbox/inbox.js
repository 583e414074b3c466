// The mail-test-srv inbox: plain DOM code over the server's own APIs (Mailpit's /api/v1 for
// messages and search, /chaos and /stats), live updates from /events (server-sent events).
// Every message is a real link to /view/{ID}; the server answers that address with this same
// page, so a link opens in a new tab, survives a reload and can be shared. Text from messages
// only ever reaches the page through textContent, and HTML bodies only through the sandboxed
// iframe, whose document the server sends under its own restrictive CSP.
"use strict";

const PAGE = 50;
const $ = (id) => document.getElementById(id);
const state = { start: 0, query: "", total: 0, shown: null, editingChaos: false };

async function api(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path, init);
  if (!response.ok) {
    throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
  }
  const type = response.headers.get("content-type") || "";
  return type.includes("json") ? response.json() : response.text();
}

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props || {});
  node.append(...children);
  return node;
}

function who(a) {
  if (!a || !a.Address) return "";
  return a.Name ? `${a.Name} <${a.Address}>` : a.Address;
}

function showError(error) {
  const box = $("error");
  box.textContent = String(error.message || error);
  box.hidden = false;
}

// ---- the list -------------------------------------------------------------------------------

function item(m) {
  const link = el("a", {
    href: `/view/${encodeURIComponent(m.ID)}`,
    className: "item" + (m.Read ? "" : " unread") + (m.ID === state.shown ? " selected" : ""),
  });
  link.dataset.id = m.ID;
  const clip = m.Attachments ? ` [${m.Attachments} attachment${m.Attachments > 1 ? "s" : ""}]` : "";
  const to = m.To.length ? m.To : m.Bcc;
  link.append(
    el("span", { className: "from", textContent: who(m.From) || "(no sender)" }),
    el("time", { dateTime: m.Created, textContent: new Date(m.Created).toLocaleTimeString() }),
    el("span", { className: "subject", textContent: (m.Subject || "(no subject)") + clip }),
    el("span", {
      className: "snippet",
      textContent: (to.length ? "to " + to.map(who).join(", ") + " - " : "") + m.Snippet,
    }),
  );
  link.addEventListener("click", (event) => {
    // A modified or middle click opens the link in a new tab, as links do.
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) {
      return;
    }
    event.preventDefault();
    history.pushState(null, "", link.href);
    route();
  });
  return el("li", {}, link);
}

// The entries on screen by message ID, with what they were drawn from. A reload keeps an
// entry whose message did not change: the element a user is hovering, focusing or clicking
// stays the same element, rather than being replaced by a copy at every live update.
let drawn = new Map();

function entries(messages) {
  const next = new Map();
  const nodes = messages.map((m) => {
    const key = JSON.stringify([m.ID === state.shown, m.Read, m.From, m.To, m.Bcc, m.Created,
      m.Subject, m.Snippet, m.Attachments]);
    const old = drawn.get(m.ID);
    const node = old && old.key === key ? old.node : item(m);
    next.set(m.ID, { key, node });
    return node;
  });
  drawn = next;
  return nodes;
}

let listing = 0;
async function loadList() {
  const ticket = ++listing;
  const q = state.query;
  const page = `start=${state.start}&limit=${PAGE}`;
  const path = q
    ? `/api/v1/search?query=${encodeURIComponent(q)}&${page}`
    : `/api/v1/messages?${page}`;
  const data = await api("GET", path);
  if (ticket !== listing) return; // a newer request is on its way
  state.total = data.messages_count;
  if (state.start > 0 && state.start >= state.total) {
    state.start = Math.max(0, state.total - PAGE);
    return loadList();
  }
  $("list").replaceChildren(...entries(data.messages));
  const what = q ? `${data.messages_count} matching of ${data.total}` : `${data.total}`;
  $("list-info").textContent = `${what} message${data.total === 1 ? "" : "s"}, ${data.unread} unread`;
  const last = Math.min(state.start + PAGE, state.total);
  $("page").textContent = state.total ? `${state.start + 1}-${last}` : "";
  $("newer").disabled = state.start === 0;
  $("older").disabled = last >= state.total;
}

// ---- one message ----------------------------------------------------------------------------

function tab(name) {
  for (const button of $("tabs").querySelectorAll("button")) {
    button.classList.toggle("active", button.dataset.tab === name);
  }
  for (const panel of document.querySelectorAll(".tab")) {
    panel.classList.toggle("active", panel.id === `tab-${name}`);
  }
  if (name === "raw" && state.shown && !$("tab-raw").dataset.loaded) {
    const id = state.shown;
    api("GET", `/api/v1/message/${encodeURIComponent(id)}/raw`)
      .then((raw) => {
        if (state.shown !== id) return;
        $("tab-raw").textContent = raw;
        $("tab-raw").dataset.loaded = "1";
      })
      .catch(showError);
  }
}

async function show(id) {
  const m = await api("GET", `/api/v1/message/${encodeURIComponent(id)}`);
  const headers = await api("GET", `/api/v1/message/${encodeURIComponent(m.ID)}/headers`);
  state.shown = m.ID;
  $("placeholder").hidden = true;
  $("error").hidden = true;
  $("message").hidden = false;
  $("m-subject").textContent = m.Subject || "(no subject)";
  document.title = `${m.Subject || "(no subject)"} - mail-test-srv`;
  const rows = [
    ["From", who(m.From)],
    ["To", m.To.map(who).join(", ")],
    ["Cc", m.Cc.map(who).join(", ")],
    ["Bcc", m.Bcc.map(who).join(", ")],
    ["Reply-To", m.ReplyTo.map(who).join(", ")],
    ["Date", new Date(m.Date).toString()],
    ["Message-ID", m.MessageID],
    ["Size", `${m.Size} bytes`],
    ["ID", m.ID],
  ].filter(([, value]) => value);
  $("m-headers").replaceChildren(
    ...rows.flatMap(([name, value]) => [el("dt", { textContent: name }), el("dd", { textContent: value })]),
  );
  const base = `/api/v1/message/${encodeURIComponent(m.ID)}`;
  $("m-attachments").replaceChildren(
    ...m.Attachments.concat(m.Inline).map((a) =>
      el("li", {}, el("a", {
        href: `${base}/part/${encodeURIComponent(a.PartID)}?dl=1`,
        download: a.FileName || a.ContentID || `part-${a.PartID}`,
        textContent: `${a.FileName || a.ContentID || "part " + a.PartID} (${a.ContentType}, ${a.Size} bytes)`,
      })),
    ),
  );
  $("m-eml").href = `${base}/raw?dl=1`;
  $("m-eml").download = `${m.ID}.eml`;
  // The HTML body is never put into this page: the iframe loads it from its own address,
  // sandboxed (no scripts, an opaque origin) and under a CSP that forbids script and network.
  $("m-html").hidden = !m.HTML;
  $("m-no-html").hidden = !!m.HTML;
  $("m-html").src = m.HTML ? `/view/${encodeURIComponent(m.ID)}.html` : "about:blank";
  $("tab-text").textContent = m.Text;
  $("tab-headers").tBodies[0].replaceChildren(
    ...Object.entries(headers).flatMap(([name, values]) =>
      values.map((v) => el("tr", {}, el("td", { textContent: name }), el("td", { textContent: v }))),
    ),
  );
  $("tab-raw").textContent = "";
  delete $("tab-raw").dataset.loaded;
  tab(m.HTML ? "html" : "text");
  for (const link of $("list").querySelectorAll("a.item")) {
    link.classList.toggle("selected", link.dataset.id === m.ID);
    if (link.dataset.id === m.ID) link.classList.remove("unread");
  }
}

function hideMessage() {
  state.shown = null;
  $("message").hidden = true;
  $("placeholder").hidden = false;
  $("m-html").src = "about:blank";
  document.title = "mail-test-srv inbox";
}

function route() {
  const match = location.pathname.match(/^\/view\/([^/]+)$/);
  if (match) {
    show(decodeURIComponent(match[1])).catch((e) => {
      hideMessage();
      showError(e);
    });
  } else {
    hideMessage();
  }
}

// ---- chaos and counters ---------------------------------------------------------------------

function fillChaos(c) {
  if (!state.editingChaos) {
    $("chance").value = c.chance;
    $("stage").value = c.stage;
    $("mode").value = c.mode;
    $("reject-code").value = c.reject_code;
    $("delay").value = c.delay_ms;
  }
  const gone = c.gone_away_ms > 0 ? `; gone away for ${(c.gone_away_ms / 1000).toFixed(1)} s more` : "";
  const first = c.close_first > 0 ? `; next ${c.close_first} connections fault` : "";
  $("chaos-status").textContent =
    `Now: ${c.chance}% at ${c.stage}, mode ${c.mode}${c.mode === "reject" ? " " + c.reject_code : ""}` +
    `${c.delay_ms ? `, replies delayed ${c.delay_ms} ms` : ""}${first}${gone}.`;
}

async function loadChaos() {
  fillChaos(await api("GET", "/chaos"));
}

const COUNTERS = [
  ["stored_messages", "stored messages"],
  ["messages", "accepted since start"],
  ["deliveries", "deliveries"],
  ["connections", "SMTP connections"],
  ["active_connections", "open now"],
  ["faults_close", "faults: close"],
  ["faults_421", "faults: 421"],
  ["faults_reject", "faults: reject"],
  ["refused", "refused (gone away)"],
  ["rejected_too_big", "rejected: too big"],
  ["rejected_full", "rejected: store full"],
  ["rejected_connections", "rejected: too many connections"],
  ["tls_handshake_failures", "TLS handshake failures"],
  ["stored_bytes", "stored bytes"],
];

async function loadStats() {
  const s = await api("GET", "/stats");
  $("stats-list").replaceChildren(
    ...COUNTERS.flatMap(([key, label]) => [
      el("dt", { textContent: label }),
      el("dd", { textContent: String(s[key]) }),
    ]),
    ...Object.entries(s.faults_by_stage).flatMap(([stage, n]) => [
      el("dt", { textContent: `faults at ${stage}` }),
      el("dd", { textContent: String(n) }),
    ]),
  );
}

// ---- wiring ---------------------------------------------------------------------------------

let pending = null;
function refreshSoon() {
  if (pending) return;
  pending = setTimeout(() => {
    pending = null;
    loadList().catch(showError);
    loadStats().catch(() => {});
  }, 100);
}

function live() {
  const events = new EventSource("/events");
  events.addEventListener("open", () => $("live").classList.remove("off"));
  events.addEventListener("error", () => $("live").classList.add("off"));
  events.addEventListener("change", refreshSoon);
}

function wire() {
  $("search").addEventListener("submit", (event) => {
    event.preventDefault();
    state.query = $("query").value.trim();
    state.start = 0;
    loadList().catch(showError);
  });
  $("query").addEventListener("search", () => {
    // The clear button of a search field.
    if ($("query").value === "" && state.query !== "") {
      state.query = "";
      state.start = 0;
      loadList().catch(showError);
    }
  });
  $("newer").addEventListener("click", () => {
    state.start = Math.max(0, state.start - PAGE);
    loadList().catch(showError);
  });
  $("older").addEventListener("click", () => {
    state.start += PAGE;
    loadList().catch(showError);
  });
  $("clear").addEventListener("click", () => {
    api("DELETE", "/api/v1/messages")
      .then(() => {
        history.pushState(null, "", "/");
        route();
        return loadList();
      })
      .catch(showError);
  });
  $("m-delete").addEventListener("click", () => {
    const id = state.shown;
    if (!id) return;
    api("DELETE", "/api/v1/messages", { IDs: [id] })
      .then(() => {
        history.pushState(null, "", "/");
        route();
        return loadList();
      })
      .catch(showError);
  });
  for (const button of $("tabs").querySelectorAll("button")) {
    button.addEventListener("click", () => tab(button.dataset.tab));
  }
  const form = $("chaos-form");
  // While the user edits the form, the periodic refresh leaves its inputs alone.
  form.addEventListener("focusin", () => (state.editingChaos = true));
  form.addEventListener("focusout", (event) => {
    if (!form.contains(event.relatedTarget)) state.editingChaos = false;
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const patch = {
      chance: Number($("chance").value),
      stage: $("stage").value,
      mode: $("mode").value,
      reject_code: Number($("reject-code").value),
      delay_ms: Number($("delay").value),
    };
    state.editingChaos = false;
    api("PUT", "/chaos", patch).then(fillChaos).catch(showError);
  });
  $("gone-form").addEventListener("submit", (event) => {
    event.preventDefault();
    api("PUT", "/chaos", { gone_away_ms: Number($("gone-ms").value) }).then(fillChaos).catch(showError);
  });
  window.addEventListener("popstate", route);
}

async function main() {
  wire();
  $("smtp").textContent = `SMTP ${document.querySelector('meta[name="smtp"]')?.content || ""}`;
  live();
  route();
  await Promise.all([loadList(), loadChaos(), loadStats()]);
  // The first render is done: benches/inbox_render.rs reads this mark.
  performance.mark("inbox-first-render");
  setInterval(() => {
    loadStats().catch(() => {});
    loadChaos().catch(() => {});
  }, 2000);
}

main().catch(showError);
