// The WOPR web UI: plain DOM, no framework, no inline script. It only talks to the origin it was
// served from, with the session cookie `/login` set; nothing is ever taken from the URL but the page.
// Text from the daemon (peers' names, AI answers) is always set as text, never parsed as HTML.

const main = document.getElementById("main");
const status = document.getElementById("status");

// `/login` hands the session's key over in the fragment; it moves to this tab's storage (scoped to
// this origin and port) and leaves the address bar. Every request carries it next to the cookie.
const handed = new URLSearchParams(location.hash.slice(1)).get("key");
if (handed) {
  sessionStorage.setItem("woprKey", handed);
  history.replaceState(null, "", location.pathname);
}
const uiKey = () => sessionStorage.getItem("woprKey") || "";
const SECRET = /(apikey|api_key|token|secret|password)$/i;

function h(tag, attrs = {}, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (v !== false && v != null) el.setAttribute(k, v === true ? "" : v);
  }
  for (const kid of kids.flat()) el.append(kid instanceof Node ? kid : document.createTextNode(String(kid ?? "")));
  return el;
}

function say(text, bad = false) {
  status.replaceChildren(h("span", { class: bad ? "error" : "" }, text));
  if (!bad) setTimeout(() => { if (status.textContent === text) status.replaceChildren(); }, 4000);
}

async function api(method, path, body) {
  const headers = { "X-WOPR-UI-Key": uiKey() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, {
    method, credentials: "same-origin", headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (r.status === 401) throw new Error("Not logged in: run `wopr ui` and open the link it prints.");
  if (r.status === 204) return null;
  const data = await r.json().catch(() => null);
  if (!r.ok) throw new Error((data && data.detail) || `${method} ${path}: ${r.status}`);
  return data;
}

// Reads a server-sent event stream from a POST, calling onEvent(name, data) for each event.
async function stream(path, body, onEvent) {
  const r = await fetch(path, {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", Accept: "text/event-stream", "X-WOPR-UI-Key": uiKey() },
    body: JSON.stringify(body),
  });
  if (!r.ok) { const d = await r.json().catch(() => null); throw new Error((d && d.detail) || `${r.status}`); }
  const reader = r.body.getReader(); const dec = new TextDecoder(); let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, i); buf = buf.slice(i + 2);
      let name = "message", data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data += line.slice(5).trim();
      }
      if (data) onEvent(name, JSON.parse(data));
    }
  }
}

function table(cols, rows) {
  return h("table", {}, h("thead", {}, h("tr", {}, cols.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c))))));
}

function field(label, input) { return h("label", {}, label, input); }
const time = (ms) => (ms ? new Date(ms).toLocaleString() : "-");

function formOf(onsubmit, ...kids) {
  return h("form", { onsubmit: async (e) => { e.preventDefault(); try { await onsubmit(new FormData(e.target), e.target); } catch (err) { say(err.message, true); } } }, ...kids);
}

async function confirmThen(question, action) {
  if (!confirm(question)) return;
  try { await action(); } catch (e) { say(e.message, true); }
}

const pages = {
  async sessions() {
    const [list, providers] = await Promise.all([api("GET", "/sessions"), api("GET", "/providers")]);
    return [
      h("h2", {}, "Sessions"),
      list.length ? table(["Name", "Provider", "Messages", "Last activity", ""], list.map((s) => [
        h("a", { href: `#chat/${encodeURIComponent(s.name)}` }, s.name), s.provider || "auto", s.messages, time(s.lastActivity),
        h("button", { class: "danger", "aria-label": `Delete ${s.name}`, onclick: () => confirmThen(`Delete session ${s.name} and its history?`, async () => {
          await api("DELETE", `/sessions/${encodeURIComponent(s.name)}`); say(`Deleted ${s.name}`); route();
        }) }, "Delete"),
      ])) : h("p", {}, "No sessions yet."),
      h("h2", {}, "New session"),
      formOf(async (f) => {
        const body = { name: f.get("name"), context: f.get("context") };
        if (f.get("provider") !== "auto") body.provider = f.get("provider");
        await api("POST", "/sessions", body); say(`Created ${body.name}`); location.hash = `#chat/${encodeURIComponent(body.name)}`;
      },
      field("Name", h("input", { name: "name", required: true, pattern: "[A-Za-z0-9._:()\\-]{1,128}", autocomplete: "off" })),
      field("Context", h("input", { name: "context", placeholder: "You are a helpful assistant." })),
      field("Provider", h("select", { name: "provider" }, h("option", { value: "auto" }, "auto"),
        providers.map((p) => h("option", { value: p.name }, `${p.name}${p.available ? "" : " (unavailable)"}`)))),
      h("button", { type: "submit" }, "Create")),
    ];
  },

  async chat(name) {
    const s = await api("GET", `/sessions/${encodeURIComponent(name)}?limit=50`);
    const log = h("div", { class: "chat", role: "log", "aria-live": "polite", "aria-label": `Conversation in ${name}` });
    const add = (who, text, cls = "msg") => {
      const t = h("span", { class: "text" }, text);
      log.append(h("div", { class: cls }, h("span", { class: "who" }, who), t));
      log.scrollTop = log.scrollHeight;
      return t;
    };
    for (const m of s.messages) add(m.role === "user" ? m.source : m.role, m.content);
    const input = h("textarea", { name: "message", required: true, id: "message" });
    return [
      h("h2", {}, `Chat: ${name}`),
      h("p", {}, `Provider ${s.provider || "auto"} · trust ${s.trust}`),
      log,
      formOf(async (f, form) => {
        const message = f.get("message"); form.reset(); add("you", message);
        const answer = add("ai", ""); const button = form.querySelector("button"); button.disabled = true;
        try {
          await stream(`/sessions/${encodeURIComponent(name)}/inject`, { message }, (ev, d) => {
            if (ev === "delta") answer.textContent += d.text;
            else if (ev === "toolStart") add("tool", `${d.name} ${JSON.stringify(d.arguments)}`, "msg tool");
            else if (ev === "toolEnd") add("tool", `${d.name} ${d.ok ? "done" : "failed"}`, "msg tool");
            else if (ev === "error") add("error", d.problem.detail, "msg error");
            else if (ev === "done") answer.parentElement.dataset.done = "true";
          });
        } finally { button.disabled = false; input.focus(); }
      }, field("Message", input), h("button", { type: "submit" }, "Send")),
    ];
  },

  async peers() {
    const [peers, grants, sessions, me] = await Promise.all([api("GET", "/peers"), api("GET", "/access"), api("GET", "/sessions"), api("GET", "/identity")]);
    const result = h("div", { "aria-live": "polite" });
    const sessionSelect = () => h("select", { name: "session" }, sessions.map((s) => h("option", {}, s.name)));
    const capSelect = () => h("select", { name: "cap" }, h("option", {}, "inject"), h("option", {}, "message"));
    return [
      h("h2", {}, "Invite someone"),
      h("p", {}, "Your WOPR id: ", h("code", {}, me.publicKey)),
      formOf(async (f) => {
        const r = await api("POST", "/peers/invite", { pubkey: f.get("pubkey"), session: f.get("session"), cap: f.get("cap"), expires: f.get("expires") });
        const copy = h("button", { type: "button", class: "secondary", onclick: async () => {
          try { await navigator.clipboard.writeText(r.token); say("Invite copied"); } catch (e) { say(`Copy failed: ${e.message}`, true); }
        } }, "Copy");
        result.replaceChildren(h("p", {}, `Valid until ${time(r.expiresAt)}. Only the holder of that key can claim it.`),
          h("div", { class: "token", id: "invite-token" }, r.token), copy,
          h("div", { class: "qr" }, h("img", { alt: "QR code of the invite", src: `data:image/svg+xml;base64,${btoa(r.qrSvg)}` })));
      },
      field("Their public key", h("input", { name: "pubkey", required: true, autocomplete: "off" })),
      field("Session", sessionSelect()),
      field("Capability", capSelect()),
      field("Valid for", h("input", { name: "expires", value: "7d", size: 5 })),
      h("button", { type: "submit" }, "Create invite")),
      result,
      h("h2", {}, "Claim an invite"),
      formOf(async (f) => {
        const p = await api("POST", "/peers/claim", { token: f.get("token").trim() });
        await route(); say(`Claimed: you can reach ${[...p.sessions].join(", ")} on ${p.name}`);
      }, field("Invite token", h("input", { name: "token", required: true, autocomplete: "off" })), h("button", { type: "submit" }, "Claim")),
      h("h2", {}, "Peers you can reach"),
      peers.length ? table(["Name", "Id", "Sessions", "Last seen", ""], peers.map((p) => [p.name, p.shortId, p.sessions.join(", "), time(p.lastSeen),
        h("button", { class: "secondary", "aria-label": `Rename ${p.name}`, onclick: async () => {
          const n = prompt(`New name for ${p.name}`); if (!n) return;
          try { await api("PUT", `/peers/${encodeURIComponent(p.publicKey)}/name`, { name: n }); route(); } catch (e) { say(e.message, true); }
        } }, "Rename")]))
        : h("p", {}, "Nobody yet."),
      h("h2", {}, "Who can reach your sessions"),
      grants.length ? table(["Peer", "Id", "Sessions", "Capabilities", ""], grants.map((g) => [g.peerName, g.peerKey.slice(0, 12), g.sessions.join(", "), g.capabilities.join(", "),
        h("button", { class: "danger", "aria-label": `Revoke ${g.peerName}`, onclick: () => confirmThen(`Revoke ${g.peerName}?`, async () => {
          await api("DELETE", `/access/${encodeURIComponent(g.peerKey)}`); await route(); say(`Revoked ${g.peerName}`);
        }) }, "Revoke")]))
        : h("p", {}, "Nobody has access."),
      h("h2", {}, "Grant access"),
      formOf(async (f) => { await api("POST", "/access", { peer: f.get("peer"), session: f.get("session"), cap: f.get("cap") }); await route(); say("Granted"); },
        field("Peer (name, id or key)", h("input", { name: "peer", required: true })),
        field("Session to grant", sessionSelect()),
        field("Capability to grant", capSelect()),
        h("button", { type: "submit" }, "Grant")),
    ];
  },

  async audit() {
    const q = new URLSearchParams(sessionStorage.getItem("auditFilter") || "limit=100");
    const entries = await api("GET", `/audit?${q}`);
    return [
      h("h2", {}, "Audit log"),
      formOf(async (f) => { const p = new URLSearchParams(); for (const [k, v] of f) if (v) p.set(k, v); sessionStorage.setItem("auditFilter", p.toString()); route(); },
        field("Peer", h("input", { name: "peer", value: q.get("peer") || "" })),
        field("Action", h("input", { name: "action", value: q.get("action") || "" })),
        field("Decision", h("select", { name: "decision" }, ["", "accepted", "refused"].map((d) => h("option", { value: d, selected: q.get("decision") === d }, d || "any")))),
        field("Limit", h("input", { name: "limit", value: q.get("limit") || "100", size: 5 })),
        h("button", { type: "submit" }, "Filter")),
      entries.length ? table(["Time", "Peer", "Action", "Session", "Decision", "Reason"],
        entries.reverse().map((e) => [time(e.timeMs), e.peer.slice(0, 12), e.action, e.session || "-", e.decision, e.reason || ""]))
        : h("p", {}, "No entries."),
    ];
  },

  async providers() {
    const [providers, models] = await Promise.all([api("GET", "/providers"), api("GET", "/models")]);
    const bar = h("progress", { max: 1, value: 0, "aria-label": "Download progress" });
    const note = h("span", {});
    return [
      h("h2", {}, "Providers"),
      table(["Provider", "Status", "Detail"], providers.map((p) => [p.name + (p.default ? " (default)" : ""), p.available ? "available" : "unavailable", p.detail])),
      h("h2", {}, "Models"),
      models.length ? table(["File", "Size", "Active"], models.map((m) => [m.path, m.size ? `${Math.round(m.size / 1e6)} MB` : "missing", m.active ? "yes" : ""])) : h("p", {}, "No model files."),
      h("p", {}, h("button", { onclick: async () => {
        try {
          await stream("/models/pull", {}, (ev, d) => {
            if (ev === "progress") { if (d.total) { bar.max = d.total; bar.value = d.done; } note.textContent = ` ${Math.round(d.done / 1e6)} MB`; }
            else if (ev === "done") { bar.max = 1; bar.value = 1; note.textContent = d.downloaded ? " installed" : " already installed"; }
            else if (ev === "error") say(d.problem.detail, true);
          });
        } catch (e) { say(e.message, true); }
      } }, "Pull the default model"), " ", bar, note),
    ];
  },

  async sandbox() {
    const r = await api("GET", "/sandbox/doctor");
    return [h("h2", {}, "Sandbox doctor"), ...r.backends.map((b) => [
      h("h3", {}, `${b.backend}: ${b.available ? "available" : "unavailable"}`), h("p", {}, b.detail),
      b.probes.length ? table(["Property", "Result", "Detail"], b.probes.map((p) => [p.property, p.verdict, p.detail])) : "",
    ])];
  },

  async discover() {
    const [status, peers, requests, profile] = await Promise.all([
      api("GET", "/discover/status"), api("GET", "/discover/peers?all=true"), api("GET", "/discover/requests"), api("GET", "/discover/profile"),
    ]);
    const src = (s) => (s.enabled ? `on, ${s.found} found` : "off") + (s.note ? ` (${s.note})` : "");
    const content = (c) => h("code", {}, typeof c === "string" ? c : JSON.stringify(c));
    return [
      h("h2", {}, "Topics"),
      status.topics.length ? table(["Topic", "Peers", "Neighbours", ""], status.topics.map((t) => [t.name, t.peers, t.neighbors,
        h("button", { "aria-label": `Leave ${t.name}`, onclick: () => confirmThen(`Leave ${t.name}? Your profile is withdrawn there.`, async () => {
          await api("DELETE", `/discover/topics/${encodeURIComponent(t.name)}`); await route(); say(`Left ${t.name}`);
        }) }, "Leave")])) : h("p", {}, "No topics joined."),
      formOf(async (f) => { await api("POST", "/discover/topics", { topic: f.get("topic") }); await route(); say(`Joined ${f.get("topic")}`); },
        field("Topic", h("input", { name: "topic", required: true, autocomplete: "off", maxlength: 128 })),
        h("button", { type: "submit" }, "Join")),
      h("h2", {}, "Peers online"),
      peers.length ? table(["Id", "Topic", "Profile", "Filter", ""], peers.map((p) => [p.id, p.topic, content(p.content),
        p.verdict === "filtered" ? `filtered: ${p.reason || ""}` : p.verdict,
        h("button", { "aria-label": `Connect to ${p.id}`, onclick: async () => {
          try { const c = await api("POST", "/discover/connect", { peer: p.publicKey, message: "" }); await route(); say(`Connected: ${p.id} accepted (${c.reason})`); } catch (e) { say(e.message, true); }
        } }, "Connect")])) : h("p", {}, "Nobody seen right now (peers are listed only while online)."),
      h("h2", {}, "Connect requests waiting"),
      requests.length ? table(["From", "Profile", "Note", ""], requests.map((r) => [r.peer.id, content(r.peer.content), r.note,
        h("span", {}, ...[true, false].map((accept) => h("button", { class: accept ? "" : "danger", onclick: async () => {
          try { await api("POST", `/discover/requests/${encodeURIComponent(r.peer.publicKey)}`, { accept }); await route(); say(accept ? "Accepted" : "Declined"); } catch (e) { say(e.message, true); }
        } }, accept ? "Accept" : "Decline")))])) : h("p", {}, "None."),
      h("h2", {}, "Your profile"),
      formOf(async (f) => {
        let v; try { v = JSON.parse(f.get("content")); } catch (e) { throw new Error(`The profile must be a JSON object: ${e.message}`); }
        const r = await api("PUT", "/discover/profile", v); await route(); say(`Profile set (${r.bytes} bytes)${r.announced ? " and announced" : ""}`);
      },
      field("Content (JSON)", h("textarea", { name: "content", rows: 3, required: true }, JSON.stringify(profile.content))),
      h("button", { type: "submit" }, "Publish")),
      h("h2", {}, "Bootstrap and layers"),
      table(["Source", "State"], [["Static (discover.bootstrap)", src(status.sources.staticNodes)], ["Known peers", src(status.sources.knownPeers)],
        ["LAN (mDNS)", src(status.sources.mdns)], ["Mainline DHT", src(status.sources.dht)],
        ["Only-list", status.only ? `${status.only.length} keys` : "off"], ["Content filter", status.filter], ["Accept", status.accept]]),
    ];
  },

  async friends() {
    const f = await api("GET", "/friends");
    return [
      h("h2", {}, "Friends"),
      f.friends.length ? table(["Name", "Id", "Session", "Since", ""], f.friends.map((x) => [x.name + (x.autoAccepted ? " (auto)" : ""), x.shortId, x.session, time(x.since),
        h("button", { class: "danger", "aria-label": `Remove ${x.name}`, onclick: () => confirmThen(`End the friendship with ${x.name}? Their grant is revoked.`, async () => {
          await api("DELETE", `/friends/${encodeURIComponent(x.publicKey)}`); await route(); say(`Removed ${x.name}`);
        }) }, "Remove")])) : h("p", {}, "No friends yet."),
      h("h2", {}, "Waiting for you"),
      f.incoming.length ? table(["Name", "Id", "Received", ""], f.incoming.map((r) => [r.name, r.from.slice(0, 8), time(r.receivedAt),
        h("button", { "aria-label": `Accept ${r.name}`, onclick: async () => {
          try { const a = await api("POST", "/friends/accept", { query: r.from }); await route(); say(`Friends with ${a.friend.name}`); } catch (e) { say(e.message, true); }
        } }, "Accept")])) : h("p", {}, "None."),
      h("h2", {}, "Waiting for them"),
      f.outgoing.length ? table(["Name", "Id", "Sent"], f.outgoing.map((r) => [r.name, r.to.slice(0, 8), time(r.sentAt)])) : h("p", {}, "None."),
      h("h2", {}, "Send a request or paste a line"),
      formOf(async (fd) => {
        const q = fd.get("target").trim();
        if (q.startsWith("FRIEND_")) { const a = await api("POST", "/friends/accept", { query: q }); await route(); say(`Friends with ${a.friend.name}`); return; }
        const r = await api("POST", "/friends/requests", { target: q }); await route();
        say(r.status === "accepted" ? `Friends with ${r.friend.name}` : `Request ${r.status}: ${r.reason}`);
      },
      field("Peer, id, key, or a FRIEND_REQUEST / FRIEND_ACCEPT line", h("input", { name: "target", required: true, autocomplete: "off" })),
      h("button", { type: "submit" }, "Send")),
      h("h2", {}, "Auto-accept rules"),
      f.autoAccept.length ? table(["Rule", ""], f.autoAccept.map((rule) => [rule,
        h("button", { class: "danger", "aria-label": `Remove rule ${rule}`, onclick: async () => {
          try { await api("DELETE", `/friends/auto-accept/${encodeURIComponent(rule)}`); await route(); say(`Removed rule ${rule}`); } catch (e) { say(e.message, true); }
        } }, "Remove")])) : h("p", {}, "None: every request waits for you."),
      formOf(async (fd) => { const r = await api("POST", "/friends/auto-accept", { pattern: fd.get("pattern") }); await route(); say(`Rule ${r.rule} ${r.changed ? "added" : "already there"}`); },
        field("Pattern (*, a name, or a|b)", h("input", { name: "pattern", required: true, autocomplete: "off" })),
        h("button", { type: "submit" }, "Add rule")),
    ];
  },

  async identity() {
    const me = await api("GET", "/identity");
    return [
      h("h2", {}, "Identity"),
      table(["What", "Value"], [["Short id", me.shortId], ["Public key", h("code", {}, me.publicKey)], ["Encryption key", h("code", {}, me.encryptPub)]]),
      h("h2", {}, "Rotate"),
      formOf(async (f) => {
        if (!confirm("Rotate your identity? Peers are told of the new key.")) return;
        const r = await api("POST", "/identity/rotate", { reason: f.get("reason") });
        await route(); say(`Rotated to ${r.identity.shortId}: ${r.delivered.length} peers told, ${r.pending.length} pending`);
      },
      field("Reason", h("select", { name: "reason" }, h("option", {}, "scheduled"), h("option", {}, "compromise"), h("option", {}, "upgrade"))),
      h("button", { type: "submit", class: "danger" }, "Rotate")),
    ];
  },

  async config() {
    const c = await api("GET", "/config");
    const flat = [];
    const walk = (o, p) => {
      for (const [k, v] of Object.entries(o)) {
        const key = p ? `${p}.${k}` : k;
        if (v && typeof v === "object" && !Array.isArray(v)) walk(v, key);
        else flat.push([key, SECRET.test(k) ? "(set, hidden)" : JSON.stringify(v)]);
      }
    };
    walk(c, "");
    return [
      h("h2", {}, "Configuration"),
      flat.length ? table(["Key", "Value"], flat) : h("p", {}, "Nothing set."),
      h("h2", {}, "Set a key"),
      formOf(async (f) => {
        let v = f.get("value");
        try { v = JSON.parse(v); } catch { /* a plain string */ }
        await api("PUT", `/config/${encodeURIComponent(f.get("key"))}`, v); await route(); say(`Set ${f.get("key")}`);
      },
      field("Key", h("input", { name: "key", required: true, placeholder: "p2p.relay" })),
      field("Value (JSON or text)", h("input", { name: "value", required: true })),
      h("button", { type: "submit" }, "Set")),
    ];
  },
};

async function route() {
  const [page, arg] = (location.hash.slice(1) || "sessions").split("/");
  const current = page === "chat" ? "sessions" : page;
  for (const a of document.querySelectorAll("nav a")) {
    if (a.getAttribute("href") === `#${current}`) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const render = Object.hasOwn(pages, page) ? pages[page] : pages.sessions;
  try {
    main.replaceChildren(...[await render(arg && decodeURIComponent(arg))].flat(2));
  } catch (e) {
    main.replaceChildren(h("p", { class: "error" }, e.message));
  }
}

// The skip link moves the focus, not the page: the hash belongs to the router.
document.querySelector(".skip").addEventListener("click", (e) => { e.preventDefault(); main.focus(); });
window.addEventListener("hashchange", route);
route();
