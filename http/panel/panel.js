// ctibridge agent panel. No framework; every value from the PBX or a URL
// goes into the page as text (textContent), never as HTML.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  let me = null;          // {agent, crm_url, auto_open, host_origins}
  let current = null;     // the call on the card: {call, state, since, transfer, recording}
  let es = null;
  let timer = null;
  const opened = new Set(); // calls whose CRM page was auto-opened

  function notice(msg) { $("notice").textContent = msg || ""; }

  // api calls the REST API with the sign-in cookie (same origin only).
  async function api(method, path, body, headers) {
    const init = { method, credentials: "same-origin", headers: Object.assign({}, headers) };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const res = await fetch(path, init);
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    if (!res.ok) {
      const err = new Error((data && data.detail) || res.statusText || "request failed");
      err.status = res.status;
      throw err;
    }
    return data;
  }

  async function act(fn) {
    notice("");
    try { await fn(); } catch (e) {
      if (e.status === 401) { showSignIn(); }
      notice(e.message);
    }
  }

  // A number from a link or a host page: digits and + * # only, separators
  // dropped; anything else is refused.
  function cleanNumber(raw) {
    let n = String(raw || "").trim();
    if (n.toLowerCase().startsWith("tel:")) n = n.slice(4);
    n = n.split(";")[0].replace(/[\s().\-]/g, "");
    return /^\+?[0-9*#]{1,32}$/.test(n) ? n : "";
  }

  function crmURL(call) {
    if (!me || !me.crm_url || !call) return "";
    const other = party(call);
    const vals = {
      // A number the PBX gave that is not E.164 (an internal or short
      // number) is passed as dialled: the CRM's search still finds it.
      e164: other.e164 || other.number || "", number: other.number || "", dialled: dialled(call),
      queue: call.queue || "", call_id: call.id || "", agent: me.agent,
    };
    return me.crm_url.replace(/\{\{(\w+)\}\}/g, (m, k) => (k in vals ? encodeURIComponent(vals[k]) : ""));
  }

  // The customer: the caller of an inbound call, the callee of one the agent placed.
  function party(call) {
    return call.direction === "outbound" ? (call.callee || {}) : (call.caller || {});
  }
  function dialled(call) {
    return call.direction === "outbound" ? "" : ((call.callee && call.callee.number) || "");
  }

  function fmt(sec) {
    sec = Math.max(0, Math.floor(sec));
    const m = Math.floor(sec / 60), s = sec % 60;
    return m + ":" + String(s).padStart(2, "0");
  }

  function tick() {
    if (!current) return;
    $("card-timer").textContent = fmt((Date.now() - current.since) / 1000);
  }

  const stateText = { ringing: "Ringing", talking: "In call", held: "On hold", queued: "Queued", dialing: "Dialling", ended: "Ended" };

  function render() {
    const card = $("card");
    if (!current) { card.hidden = true; clearInterval(timer); timer = null; return; }
    const c = current.call, p = party(c);
    card.hidden = false;
    card.className = current.state;
    $("card-state").textContent = stateText[current.state] || current.state;
    $("caller-name").textContent = p.name || "";
    $("caller-number").textContent = p.number || "unknown number";
    $("caller-e164").textContent = p.e164 || "—";
    $("card-dialled").textContent = dialled(c) || "—";
    $("card-queue").textContent = c.queue || "—";
    const url = crmURL(c), link = $("crm-link");
    link.hidden = !url;
    if (url) link.href = url;
    const live = current.state !== "ended";
    for (const id of ["btn-hangup", "btn-hold", "btn-resume", "btn-record", "btn-transfer"]) $(id).disabled = !live;
    $("btn-record").textContent = current.recording ? "Stop recording" : "Start recording";
    $("xfer-active").hidden = !current.transfer;
    tick();
    if (!timer) timer = setInterval(tick, 1000);
  }

  function autoOpen(call, when) {
    if (!me || me.auto_open !== when || opened.has(call.id)) return;
    const url = crmURL(call);
    if (!url) return;
    opened.add(call.id);
    window.open(url, "_blank", "noopener"); // a popup blocker may stop it: the link stays on the card
  }

  // Host pages (a CRM framing the panel) hear about the call, at their
  // configured origins only: postMessage drops a message whose target
  // origin is not the frame parent's.
  function tellHost(type, call) {
    post({ source: "ctibridge", type: "call", event: type, call });
  }
  function post(msg) {
    if (window.parent === window || !me) return;
    for (const o of me.host_origins || []) window.parent.postMessage(msg, o);
  }

  // The stream sends an agent only what came after its phone was in the
  // call: a recording the dialplan started before is in the call's own
  // events. Until they say, the card offers what the stream shows.
  async function learnRecording(id) {
    let data;
    try { data = await api("GET", "/v1/calls/" + encodeURIComponent(id)); } catch (e) { return; }
    if (!current || current.call.id !== id || !data || !data.events) return;
    let on = false;
    for (const e of data.events) {
      if (e.type === "recording.started") on = true;
      if (e.type === "recording.ready") on = false;
    }
    if (on && !current.recording && current.state !== "ended") { current.recording = true; render(); }
  }

  function onCallEvent(type, ev) {
    const c = ev.call;
    if (!c) return;
    const mine = ev.agent && ev.agent.extension === me.agent;
    const at = Date.parse(ev.occurred_at) || Date.now();
    if (!current || current.call.id !== c.id) {
      if (!(type === "call.ringing" || type === "call.answered") || (current && current.state !== "ended" && !mine)) return;
      current = { call: c, state: "ringing", since: at, transfer: null, recording: false };
      learnRecording(c.id);
    }
    current.call = c;
    switch (type) {
      case "call.ringing":
        if (mine && ev.party !== "customer") {
          current.state = "ringing"; current.since = at;
          const p = party(c);
          $("card-announce").textContent = "Incoming call from " + (p.name ? p.name + ", " : "") + (p.number || "unknown number");
          autoOpen(c, "ring");
        }
        break;
      case "call.answered":
        current.state = "talking";
        current.since = Date.parse(c.answered_at) || at;
        $("card-announce").textContent = "Call connected";
        autoOpen(c, "answer");
        break;
      case "call.held": current.state = "held"; break;
      case "call.resumed": current.state = "talking"; break;
      case "call.ring_ended":
        if (mine && current.state === "ringing") { current.state = "ended"; }
        break;
      case "call.transferred": current.transfer = null; break;
      case "recording.started": current.recording = true; break;
      case "recording.ready": current.recording = false; loadRecent(); break;
      case "call.ended": case "call.failed": case "call.abandoned":
        current.state = "ended"; current.transfer = null; current.recording = false;
        $("card-announce").textContent = "Call ended";
        loadRecent();
        break;
    }
    tellHost(type, c);
    render();
  }

  function connect() {
    if (es) es.close();
    es = new EventSource("/v1/events/stream");
    es.onopen = () => {
      $("link").textContent = "Connected";
      post({ source: "ctibridge", type: "ready", agent: me.agent }); // the host learns who is signed in, and that events flow
    };
    es.onerror = () => {
      $("link").textContent = "Reconnecting…";
      // EventSource gives up for good on any answer but 200 (a revoked key's
      // 401, a 503): ask why, then sign in again or try once more later.
      if (es.readyState === EventSource.CLOSED) setTimeout(recover, 2000);
    };
    const types = ["call.ringing", "call.ring_ended", "call.answered", "call.held", "call.resumed", "call.transferred",
      "call.ended", "call.failed", "call.abandoned", "call.queued", "recording.started", "recording.ready"];
    for (const t of types) {
      es.addEventListener(t, (m) => { try { onCallEvent(t, JSON.parse(m.data)); } catch (e) { /* not ours */ } });
    }
    es.addEventListener("agent.state", (m) => {
      const ev = JSON.parse(m.data);
      if (ev.agent && ev.agent.extension === me.agent && ev.agent_state) {
        const s = ev.agent_state;
        $("agent-state").textContent = (s.state || "") + (s.queue ? " in " + s.queue : "") + (s.reason ? " (" + s.reason + ")" : "");
      }
    });
  }

  async function recover() {
    if (!me) return; // signed out meanwhile
    try {
      await api("GET", "/panel/me");
    } catch (e) {
      if (e.status === 401) {
        if (es) es.close();
        me = null; current = null; render();
        showSignIn();
        notice("Signed out: the key was revoked or has expired. Sign in again.");
        return;
      }
      setTimeout(recover, 5000); // unreachable, or another refusal: later
      return;
    }
    connect();
  }

  async function loadRecent() {
    let data;
    try { data = await api("GET", "/v1/history?limit=10"); } catch (e) { return; }
    const ul = $("recent");
    ul.replaceChildren();
    for (const c of data.calls || []) {
      const li = document.createElement("li");
      const p = party(c), when = new Date(c.started_at);
      const text = document.createElement("span");
      text.textContent = when.toLocaleString() + " · " + c.direction + " · " + (p.name ? p.name + " " : "") + (p.number || "?") +
        (c.talk_s != null ? " · " + fmt(c.talk_s) : "") + (c.disposition ? " · " + c.disposition : "");
      li.append(text);
      const n = cleanNumber(p.number);
      if (n) {
        const b = document.createElement("button");
        b.type = "button";
        b.textContent = "Redial";
        b.setAttribute("aria-label", "Redial " + n);
        b.addEventListener("click", () => confirmCall(n));
        li.append(" ", b);
      }
      if (c.recording) {
        const a = document.createElement("audio");
        a.controls = true;
        a.preload = "none";
        a.src = "/v1/calls/" + encodeURIComponent(c.id) + "/recording";
        a.setAttribute("aria-label", "Recording of the call with " + (p.number || "unknown"));
        li.append(a);
      }
      ul.append(li);
    }
  }

  // Every call the panel places goes through this confirmation: a link
  // (GET /c2c), a host page's message or a redial only fill it in.
  let pending = "";
  function confirmCall(number) {
    pending = number;
    $("confirm-number").textContent = number;
    $("confirm-number-2").textContent = number;
    $("confirm").hidden = false;
    $("btn-confirm-call").focus();
  }

  async function place(number) {
    const key = (crypto.randomUUID && crypto.randomUUID()) || String(Date.now()) + Math.random();
    const res = await api("POST", "/v1/calls", { agent: me.agent, to: number }, { "Idempotency-Key": key });
    current = { call: { id: res.id, direction: "outbound", caller: {}, callee: { number, e164: "" } }, state: "dialing", since: Date.now(), transfer: null, recording: false };
    render();
  }

  function showSignIn() {
    $("signin").hidden = false;
    $("btn-signout").hidden = true;
    $("who").textContent = "";
    $("key").focus();
  }

  async function start() {
    try {
      me = await api("GET", "/panel/me");
    } catch (e) {
      showSignIn();
      if (e.status !== 401) notice(e.message);
      return;
    }
    $("signin").hidden = true;
    $("btn-signout").hidden = false;
    $("who").textContent = "· " + me.agent;
    connect();
    loadRecent();
    try {
      const live = await api("GET", "/v1/calls");
      for (const c of live.calls || []) {
        current = { call: c, state: c.state === "talking" || c.state === "held" ? c.state : "ringing", since: Date.parse(c.answered_at || c.started_at) || Date.now(), transfer: null, recording: false };
      }
      render();
    } catch (e) { /* the stream brings what comes next */ }
    if (location.pathname === "/c2c") {
      const n = cleanNumber(new URLSearchParams(location.search).get("number"));
      history.replaceState(null, "", "/panel/"); // a reload must not ask again
      if (n) confirmCall(n); else notice("The link's number is not a phone number.");
    }
  }

  function wire() {
    $("signin-form").addEventListener("submit", (e) => {
      e.preventDefault();
      act(async () => {
        await api("POST", "/panel/session", { key: $("key").value });
        $("key").value = "";
        await start();
        if (!me) {
          // The key was good, yet the next request had no cookie: a
          // browser keeps a third-party frame's cookie only over HTTPS.
          notice(window.top !== window.self && location.protocol !== "https:"
            ? "Signed in, but this browser does not keep the sign-in inside another site's frame over plain HTTP: serve the panel over HTTPS."
            : "Signed in, but this browser did not keep the sign-in cookie: allow cookies for this site.");
        }
      });
    });
    $("btn-signout").addEventListener("click", () => act(async () => {
      if (es) es.close();
      await api("DELETE", "/panel/session");
      me = null; current = null; render();
      showSignIn();
    }));
    $("btn-confirm-call").addEventListener("click", () => act(async () => {
      const n = pending;
      pending = "";
      $("confirm").hidden = true;
      if (n) await place(n);
    }));
    $("btn-confirm-cancel").addEventListener("click", () => { pending = ""; $("confirm").hidden = true; });
    $("dial-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const n = cleanNumber($("dial-to").value);
      if (!n) { notice("Type a phone number: digits, an optional leading +, * and #."); return; }
      act(() => place(n));
    });
    const callPath = (a) => "/v1/calls/" + encodeURIComponent(current.call.id) + "/" + a;
    $("btn-hangup").addEventListener("click", () => act(async () => {
      $("btn-hangup").disabled = true; // one click, one hangup
      await api("POST", callPath("hangup"));
    }));
    $("btn-hold").addEventListener("click", () => act(() => api("POST", callPath("hold"))));
    $("btn-resume").addEventListener("click", () => act(() => api("POST", callPath("resume"))));
    $("btn-record").addEventListener("click", () => act(async () => {
      await api("POST", callPath("record"), { action: current.recording ? "stop" : "start" });
      current.recording = !current.recording;
      render();
    }));
    $("btn-transfer").addEventListener("click", () => act(async () => {
      const to = cleanNumber($("xfer-to").value);
      if (!to) { notice("Type the number or extension to transfer to."); return; }
      const mode = $("xfer-mode").value;
      const res = await api("POST", callPath("transfer"), { to, mode });
      if (mode === "attended" && res && res.transfer_id) { current.transfer = res.transfer_id; render(); }
    }));
    $("btn-xfer-complete").addEventListener("click", () => act(async () => {
      await api("POST", "/v1/transfers/" + encodeURIComponent(current.transfer) + "/complete");
      current.transfer = null; render();
    }));
    $("btn-xfer-cancel").addEventListener("click", () => act(async () => {
      await api("DELETE", "/v1/transfers/" + encodeURIComponent(current.transfer));
      current.transfer = null; render();
    }));
    const pad = $("dtmf");
    for (const d of ["1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#"]) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = d;
      b.setAttribute("aria-label", "Send digit " + d);
      b.addEventListener("click", () => act(() => api("POST", callPath("dtmf"), { digits: d })));
      pad.append(b);
    }
    for (const b of document.querySelectorAll("[data-agent]")) {
      b.addEventListener("click", () => act(async () => {
        const body = {};
        if ($("agent-queue").value) body.queue = $("agent-queue").value.trim();
        if (b.dataset.agent === "pause" && $("agent-reason").value) body.reason = $("agent-reason").value.trim();
        await api("POST", "/v1/agents/" + encodeURIComponent(me.agent) + "/" + b.dataset.agent, body);
      }));
    }
    $("btn-tel").addEventListener("click", () => {
      try {
        navigator.registerProtocolHandler("tel", location.origin + "/c2c?number=%s");
        notice("");
        $("link").textContent = "tel: links will ask to open here";
      } catch (e) { notice("This browser does not let the panel handle tel: links: " + e.message); }
    });
    // A host page (the CRM framing the panel) asks to dial: its origin must
    // be one of http.panel.frame_ancestors, and the agent still confirms.
    window.addEventListener("message", (e) => {
      if (!me || e.source !== window.parent || !(me.host_origins || []).includes(e.origin)) return;
      const d = e.data;
      if (d && d.type === "dial") {
        const n = cleanNumber(d.number);
        if (n) confirmCall(n);
      }
    });
  }

  async function boot() {
    wire();
    // A one-time login link: the ticket is in the fragment, which never
    // reaches a server log or a Referer; it is used once and removed.
    const m = /^#ticket=([A-Za-z0-9_-]{20,100})$/.exec(location.hash);
    if (m) {
      history.replaceState(null, "", location.pathname + location.search);
      try { await api("POST", "/panel/session", { ticket: m[1] }); } catch (e) { notice(e.message); }
    }
    await start();
  }
  document.addEventListener("DOMContentLoaded", boot);
})();
