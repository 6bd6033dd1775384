// The playback log follows the loudspeakers' reports live: the server sends the day's rows again
// at every change, and the table is rebuilt from them (as text, never HTML).
"use strict";

(() => {
  const table = document.getElementById("log");
  if (!table || !table.dataset.live) return;
  const body = table.querySelector("tbody");

  function cell(row, text) {
    const td = document.createElement("td");
    if (text instanceof Node) td.append(text);
    else td.textContent = text;
    row.append(td);
    return td;
  }

  function badge(state, label) {
    const span = document.createElement("span");
    span.className = `badge state-${state}`;
    span.dataset.state = state;
    span.textContent = label;
    return span;
  }

  function apply(log) {
    const rows = log.rows.map((r) => {
      const tr = document.createElement("tr");
      tr.dataset.node = r.node;
      cell(tr, r.planned);
      const link = document.createElement("a");
      link.href = `/console/schedules/${encodeURIComponent(r.schedule_id)}`;
      link.textContent = r.title;
      cell(tr, link);
      cell(tr, r.place);
      const state = cell(tr, badge(r.state, r.state_label));
      if (r.detail) {
        const detail = Radio.text(r.detail);
        detail.className = "muted";
        state.append(" ", detail);
      }
      cell(tr, r.started);
      cell(tr, r.finished);
      return tr;
    });
    body.replaceChildren(...rows);
    document.getElementById("log-wrap").hidden = !rows.length;
    document.getElementById("log-summary").textContent = log.summary;
    const states = document.getElementById("log-states");
    states.replaceChildren();
    for (const [state, label, n] of log.states) states.append(" · ", badge(state, label), ` ${n}`);
  }

  const events = new EventSource(table.dataset.live);
  events.addEventListener("log", (event) => apply(JSON.parse(event.data)));
  window.addEventListener("pagehide", () => events.close());
})();
