// The live microphone: the officer's voice from getUserMedia, sent as WebM/Opus blobs to the
// broadcast's WebSocket, while the page shows the level, the time, the listeners and every node.
"use strict";

(() => {
  const form = document.getElementById("live-form");
  const setup = document.getElementById("live-setup");
  const onAir = document.getElementById("on-air");
  const msg = document.getElementById("live-msg");
  const preempt = document.getElementById("lv-preempt");
  const stopButton = document.getElementById("live-stop");
  const startButton = document.getElementById("live-start");
  const data = JSON.parse(document.getElementById("live-data").textContent);
  const MIME = "audio/webm;codecs=opus";
  const SLICE_MS = 250; // one blob (one WebSocket message) every quarter of a second
  // A dropped connection is retried for less than the controller keeps a broadcast without a
  // source (60 s), so the nodes hear a short silence instead of the broadcast ending.
  const RECONNECT_FOR_MS = 45000;
  // Refusals that another try would meet again: say why and stop.
  const FINAL = { 4401: "onair.ws_4401", 4403: "onair.ws_4403", 4404: "onair.ws_4404" };
  const FINAL_TOO = [4422, 1009];
  const PLAYING = "started";
  let current = null; // the broadcast this page is sending

  const $ = (id) => document.getElementById(id);

  function clock(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    const m = Math.floor(s / 60);
    return `${m}:${String(s % 60).padStart(2, "0")}`;
  }

  function micError(err) {
    switch (err && err.name) {
      case "NotAllowedError":
      case "SecurityError":
        return Radio.t("onair.mic_denied");
      case "NotFoundError":
      case "OverconstrainedError":
        return Radio.t("onair.mic_missing");
      case "NotReadableError":
      case "AbortError":
        return Radio.t("onair.mic_busy");
      default:
        return Radio.t("onair.mic_failed", { detail: (err && err.message) || "" });
    }
  }

  function request() {
    const title = $("lv-title").value.trim();
    if (!title) throw new Error(Radio.t("onair.need_title"));
    const areas = [...form.querySelectorAll('input[name="areas"]:checked')];
    const groups = [...form.querySelectorAll('input[name="groups"]:checked')];
    if (!areas.length && !groups.length) throw new Error(Radio.t("onair.need_target"));
    const minutes = Number($("lv-minutes").value);
    if (!(minutes >= 1 && minutes <= 720)) throw new Error(Radio.t("onair.bad_minutes"));
    return {
      body: {
        title,
        targets: { areas: areas.map((a) => a.value), groups: groups.map((g) => g.value) },
        priority: $("lv-priority").value,
        max_minutes: minutes,
      },
      names: [...areas, ...groups].map((a) => a.dataset.name),
    };
  }

  async function openMicrophone() {
    const devices = navigator.mediaDevices;
    if (!window.isSecureContext || !devices || !devices.getUserMedia) {
      throw new Error(Radio.t("onair.needs_https"));
    }
    if (typeof MediaRecorder === "undefined" || !MediaRecorder.isTypeSupported(MIME)) {
      throw new Error(Radio.t("onair.no_recorder"));
    }
    try {
      return await devices.getUserMedia({
        // Echo cancellation removes only what the page itself plays, and it plays nothing.
        audio: {
          channelCount: 1,
          echoCancellation: false,
          noiseSuppression: true,
          autoGainControl: true,
        },
        video: false,
      });
    } catch (err) {
      throw new Error(micError(err));
    }
  }

  // The level meter: the loudness of the last 40 ms, every 100 ms, held so short sounds show.
  function meter(stream) {
    const Context = window.AudioContext || window.webkitAudioContext;
    const box = $("lv-level");
    const bar = $("lv-level-bar");
    if (!Context) return () => {};
    const context = new Context();
    // Started after a click, so browsers let it run; resumed in case one holds it suspended.
    context.resume().catch(() => {});
    const analyser = context.createAnalyser();
    analyser.fftSize = 2048;
    context.createMediaStreamSource(stream).connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    let shown = 0;
    box.dataset.loudest = "0";
    const timer = setInterval(() => {
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const v of samples) sum += v * v;
      const db = 20 * Math.log10(Math.max(Math.sqrt(sum / samples.length), 1e-6));
      const level = Math.max(0, Math.min(100, Math.round(((db + 60) / 60) * 100)));
      shown = Math.max(level, shown - 5);
      bar.style.width = `${shown}%`;
      box.setAttribute("aria-valuenow", String(shown));
      box.dataset.loudest = String(Math.max(Number(box.dataset.loudest), level));
    }, 100);
    return () => {
      clearInterval(timer);
      bar.style.width = "0";
      box.setAttribute("aria-valuenow", "0");
      context.close();
    };
  }

  function show(state, badgeKey) {
    onAir.dataset.state = state;
    const badge = $("lv-badge");
    badge.textContent = Radio.t(badgeKey);
    badge.className = `badge ${state === "on_air" ? "on-air-badge" : "state-" + state}`;
  }

  // --- The list of recent live broadcasts -------------------------------------------------

  function listRow(live, where) {
    const table = $("live-list");
    let row = table.querySelector(`tr[data-live="${live.id}"]`);
    if (!row) {
      row = document.createElement("tr");
      row.dataset.live = live.id;
      const started = Radio.time(live.started_at);
      for (const text of [live.title, where, live.started_by, started, "", ""]) {
        const cell = document.createElement("td");
        cell.textContent = text;
        row.append(cell);
      }
      row.cells[4].className = "status";
      row.cells[5].className = "actions";
      table.tBodies[0].prepend(row);
      $("live-list-wrap").hidden = false;
      $("live-none").hidden = true;
    }
    return row;
  }

  function markRow(live, where) {
    const row = listRow(live, where);
    if (!row) return;
    row.dataset.status = live.status;
    const cell = row.querySelector("td.status");
    const badge = document.createElement("span");
    cell.replaceChildren(badge);
    if (live.status === "on_air") {
      badge.className = "badge on-air-badge";
      badge.textContent = Radio.t("onair.status_on_air");
    } else {
      badge.className = "badge state-cancelled";
      badge.textContent = Radio.t("onair.status_ended");
      const why = document.createElement("span");
      why.className = "muted";
      why.textContent = live.end_reason ? ` (${live.end_reason})` : "";
      cell.append(" ", why);
    }
    const button = row.querySelector("button.stop-other");
    if (button && live.status !== "on_air") button.remove();
  }

  async function refreshRow(live, where) {
    try {
      markRow(await Radio.api("GET", `/api/v1/live/${encodeURIComponent(live.id)}`), where);
    } catch (err) {
      // The list is a convenience: the broadcast's own panel already says what happened.
    }
  }

  // --- What the nodes report ---------------------------------------------------------------

  function alertOf(detail) {
    const found = /alert ([0-9a-zA-Z_-]+)/.exec(detail || "");
    return found ? found[1] : null;
  }

  function showNodes(s, summary) {
    const body = $("lv-nodes").tBodies[0];
    body.replaceChildren();
    let playing = 0;
    const cutBy = new Set();
    let cut = 0;
    for (const d of summary.deliveries) {
      const row = document.createElement("tr");
      row.dataset.node = d.node_id;
      row.dataset.state = d.state;
      const name = document.createElement("td");
      name.textContent = d.node_name || d.node_id;
      const state = document.createElement("td");
      const badge = document.createElement("span");
      badge.className = `badge state-${d.state}`;
      badge.textContent = data.states[d.state] || d.state;
      state.append(badge);
      const detail = document.createElement("td");
      const alert = d.state === "preempted" ? alertOf(d.detail) : null;
      if (alert) {
        cut += 1;
        cutBy.add(alert);
        detail.textContent = Radio.t("onair.cut_by_alert");
      } else {
        detail.textContent = d.detail || "";
      }
      if (d.state === PLAYING) playing += 1;
      row.append(name, state, detail);
      body.append(row);
    }
    const total = summary.deliveries.length;
    s.cut = cut;
    s.total = total;
    if (!cut) {
      preempt.hidden = true;
      return;
    }
    let text;
    if (s.state === "ended") text = Radio.t("onair.was_cut", { n: cut, total });
    else if (playing === 0) text = Radio.t("onair.preempted_all");
    else text = Radio.t("onair.preempted_some", { n: cut, total });
    const alerts = [...cutBy].sort();
    const said = `${text}|${alerts.join(",")}`;
    if (preempt.dataset.said !== said) {
      // Rewritten only when it changes: it is an alert region, read out at each change.
      preempt.dataset.said = said;
      preempt.replaceChildren(text, " ");
      for (const id of alerts) {
        const link = document.createElement("a");
        link.href = `/console/alerts/${encodeURIComponent(id)}`;
        link.textContent = Radio.t("onair.see_alert");
        preempt.append(link, " ");
      }
      preempt.hidden = false;
    }
    if (playing === 0 && s.state === "on_air" && onAir.dataset.state !== "preempted") {
      show("preempted", "onair.badge_preempted");
      Radio.say(msg, "", null); // "speak now" no longer holds: the banner says why
    }
  }

  async function follow(s) {
    try {
      showNodes(s, await Radio.api("GET", `/api/v1/schedules/${s.live.schedule_id}/deliveries`));
    } catch (err) {
      // A missed look is made up by the next one, two seconds later.
    }
  }

  // --- The broadcast -------------------------------------------------------------------------

  function record(s) {
    const recorder = new MediaRecorder(s.stream, { mimeType: MIME, audioBitsPerSecond: 48000 });
    recorder.addEventListener("dataavailable", (event) => {
      // A recorder being replaced may hand over its last blob: only the current one sends.
      if (!event.data.size || s.recorder !== recorder || s.ws.readyState !== WebSocket.OPEN) return;
      s.ws.send(event.data);
      s.sent += event.data.size;
      if (!onAir.dataset.firstSent) onAir.dataset.firstSent = String(Date.now());
    });
    recorder.start(SLICE_MS);
    s.recorder = recorder;
  }

  function dropRecorder(s) {
    const recorder = s.recorder;
    s.recorder = null;
    if (recorder && recorder.state !== "inactive") recorder.stop();
  }

  function connect(s) {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}${s.live.audio_url}?format=webm`);
    s.ws = ws;
    s.refusal = null;
    ws.addEventListener("message", (event) => {
      if (typeof event.data !== "string" || ws !== s.ws) return;
      let m;
      try {
        m = JSON.parse(event.data);
      } catch (err) {
        return;
      }
      onMessage(s, m);
    });
    ws.addEventListener("close", (event) => onClose(s, ws, event));
  }

  function onMessage(s, m) {
    if (m.type === "ready") {
      s.lostAt = null;
      s.attempts = 0;
      if (!s.recorder) record(s);
      if (!s.startedAt) s.startedAt = Date.now();
      if (s.state === "connecting") s.state = "on_air";
      if (onAir.dataset.state === "preempted") {
        Radio.say(msg, "", null);
      } else {
        show("on_air", "onair.badge");
        Radio.say(msg, Radio.t("onair.speak"), "ok");
      }
    } else if (m.type === "stats") {
      $("lv-listeners").textContent = String(m.listeners);
      $("lv-audio").textContent = Radio.t("onair.seconds", { s: Math.round(m.audio_s) });
      $("lv-sent").textContent = Radio.t("onair.kb", { kb: Math.round(m.bytes_in / 1024) });
    } else if (m.type === "ended") {
      s.state = "ending"; // the socket closes next: not a drop to recover from
      ended(s, m.reason || "");
    } else if (m.type === "error") {
      s.refusal = m;
    }
  }

  // The controller's reason, in the person's words where it is one of the usual ones.
  function reasonText(reason) {
    const by = /^stopped by (.+)$/.exec(reason);
    if (by) return Radio.t("onair.reason_stopped", { who: by[1] });
    if (reason.startsWith("its longest time")) return Radio.t("onair.reason_time");
    if (reason.startsWith("no audio source")) return Radio.t("onair.reason_no_source");
    if (reason.startsWith("the controller")) return Radio.t("onair.reason_controller");
    return Radio.t("onair.reason_other");
  }

  async function ended(s, reason) {
    let why = reason;
    try {
      // The socket's reason may be generic (stopped elsewhere): the broadcast's own is exact.
      const live = await Radio.api("GET", `/api/v1/live/${encodeURIComponent(s.live.id)}`);
      why = live.end_reason || reason;
    } catch (err) {
      // Keep the socket's reason.
    }
    const text = Radio.t("onair.ended", { reason: reasonText(why) });
    if (!s.cut) finish(s, text, "ok");
    else finish(s, `${text} ${Radio.t("onair.was_cut", { n: s.cut, total: s.total })}`, "error");
  }

  // 4409: the broadcast ended meanwhile, or another source sends it (another tab, `radio live`).
  async function ended4409(s, detail) {
    try {
      const live = await Radio.api("GET", `/api/v1/live/${encodeURIComponent(s.live.id)}`);
      if (live.status === "ended") {
        await ended(s, live.end_reason);
        return;
      }
    } catch (err) {
      // Say what the socket said.
    }
    finish(s, Radio.t("onair.ws_refused", { detail }), "error");
  }

  function onClose(s, ws, event) {
    if (ws !== s.ws || s.state === "ended" || s.state === "ending") return;
    const refusal = s.refusal;
    const code = refusal ? refusal.code : event.code;
    if (code === 4409) {
      s.state = "ending";
      ended4409(s, (refusal && refusal.detail) || event.reason || "");
      return;
    }
    if (FINAL[code] || FINAL_TOO.includes(code)) {
      const key = FINAL[code];
      const detail = (refusal && refusal.detail) || event.reason || "";
      const text = key ? Radio.t(key) : Radio.t("onair.ws_refused", { detail });
      finish(s, text, "error");
      return;
    }
    // Lost (a network drop, the server restarting): try again while the broadcast waits.
    dropRecorder(s);
    if (s.lostAt === null) s.lostAt = Date.now();
    if (Date.now() - s.lostAt > RECONNECT_FOR_MS) {
      finish(s, Radio.t("onair.lost"), "error");
      return;
    }
    s.attempts += 1;
    Radio.say(msg, Radio.t("onair.reconnecting"), "warn");
    setTimeout(() => {
      if (s.state !== "ended") connect(s);
    }, Math.min(1000 * s.attempts, 5000));
  }

  function finish(s, text, kind) {
    if (s.state === "ended") return;
    s.state = "ended";
    dropRecorder(s);
    for (const track of s.stream.getTracks()) track.stop();
    s.stopMeter();
    clearInterval(s.ticker);
    clearInterval(s.poller);
    if (s.ws && s.ws.readyState <= WebSocket.OPEN) s.ws.close(1000);
    show("ended", "onair.badge_ended");
    stopButton.hidden = true;
    Radio.say(msg, text, kind);
    setup.hidden = false;
    startButton.disabled = false;
    current = null;
    window.removeEventListener("beforeunload", warnLeaving);
    follow(s); // the nodes' last reports
    refreshRow(s.live, s.where);
  }

  function warnLeaving(event) {
    event.preventDefault();
    event.returnValue = "";
  }

  // The API's refusal in the person's terms (its own detail is English, for programs).
  function refused(err) {
    const key = { 403: "onair.no_right", 409: "onair.busy" }[err.status];
    return key ? new Error(`${Radio.t(key)}.`) : err;
  }

  async function start(asked) {
    const stream = await openMicrophone();
    let live;
    try {
      live = await Radio.api("POST", "/api/v1/live", asked.body);
    } catch (err) {
      for (const track of stream.getTracks()) track.stop();
      throw refused(err);
    }
    const s = {
      live,
      stream,
      where: asked.names.join(", "),
      state: "connecting",
      ws: null,
      recorder: null,
      sent: 0,
      cut: 0,
      refusal: null,
      startedAt: null,
      lostAt: null,
      attempts: 0,
    };
    current = s;
    s.stopMeter = meter(stream);
    onAir.dataset.live = live.id;
    delete onAir.dataset.firstSent;
    $("lv-now-title").textContent = live.title;
    $("lv-where").textContent = Radio.t("onair.where", { where: s.where });
    for (const id of ["lv-listeners", "lv-audio", "lv-sent"]) $(id).textContent = "0";
    $("lv-elapsed").textContent = "0:00";
    $("lv-nodes").tBodies[0].replaceChildren();
    preempt.hidden = true;
    delete preempt.dataset.said;
    show("on_air", "onair.badge");
    stopButton.hidden = false;
    stopButton.disabled = false;
    onAir.hidden = false;
    setup.hidden = true;
    $("on-air-h").setAttribute("tabindex", "-1");
    $("on-air-h").focus();
    window.addEventListener("beforeunload", warnLeaving);
    s.ticker = setInterval(() => {
      if (s.startedAt) $("lv-elapsed").textContent = clock((Date.now() - s.startedAt) / 1000);
    }, 500);
    s.poller = setInterval(() => follow(s), 2000);
    markRow(live, s.where);
    connect(s);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (current) return;
    let asked;
    try {
      asked = request();
    } catch (err) {
      Radio.say(msg, err.message, "error");
      return;
    }
    startButton.disabled = true;
    Radio.say(msg, Radio.t("onair.asking_mic"), null);
    try {
      await start(asked);
    } catch (err) {
      Radio.say(msg, err.message, "error");
      startButton.disabled = false;
    }
  });

  stopButton.addEventListener("click", async () => {
    const s = current;
    if (!s) return;
    stopButton.disabled = true;
    Radio.say(msg, Radio.t("onair.stopping"), null);
    if (s.ws && s.ws.readyState === WebSocket.OPEN) {
      // The last words first: the recorder hands over what it holds, then the stop.
      const recorder = s.recorder;
      if (recorder && recorder.state !== "inactive") {
        const stopped = new Promise((resolve) => {
          recorder.addEventListener("stop", resolve, { once: true });
        });
        recorder.stop();
        await stopped;
      }
      s.ws.send(JSON.stringify({ type: "stop" }));
      return; // `ended` follows
    }
    try {
      const live = await Radio.api("POST", `/api/v1/live/${encodeURIComponent(s.live.id)}/stop`);
      finish(s, Radio.t("onair.ended", { reason: reasonText(live.end_reason) }), "ok");
    } catch (err) {
      finish(s, err.message, "error");
    }
  });

  // Another broadcast still on air (a colleague's, or one whose page was closed): stop it here.
  $("live-list").addEventListener("click", async (event) => {
    const button = event.target.closest("button.stop-other");
    if (!button) return;
    const title = button.closest("tr").cells[0].textContent.trim();
    if (!window.confirm(Radio.t("onair.ask_stop", { title }))) return;
    button.disabled = true;
    try {
      const id = encodeURIComponent(button.dataset.id);
      const live = await Radio.api("POST", `/api/v1/live/${id}/stop`);
      markRow(live, "");
      Radio.say($("recent-msg"), Radio.t("onair.stopped_other", { title }), "ok");
    } catch (err) {
      Radio.say($("recent-msg"), err.message, "error");
      button.disabled = false;
    }
  });
})();
