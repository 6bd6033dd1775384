// The live view of an alert: every node's confirmation from server-sent events; cancel, all-clear.
"use strict";

(() => {
  const live = document.getElementById("live");
  const id = live.dataset.alert;
  const msg = document.getElementById("live-msg");
  const status = document.getElementById("alert-status");
  const actions = document.getElementById("alert-actions");

  function showStatus(value) {
    status.dataset.status = value;
    status.className = `badge alert-${value}`;
    status.textContent = Radio.t(`alert.status_${value}`);
    if (!actions) return;
    let any = false;
    for (const button of actions.querySelectorAll("button[data-when]")) {
      button.hidden = !button.dataset.when.split(" ").includes(value);
      any = any || !button.hidden;
    }
    actions.hidden = !any;
  }

  // A snapshot has the counts over every node, how many are in the state the page lists
  // (`matched`), and the states of the rows shown (the stream is asked for the page the table
  // shows, and keeps to its nodes whatever states they move to).
  const filter = live.dataset.state;
  const changed = document.getElementById("list-changed");

  function apply(snapshot) {
    showStatus(snapshot.status);
    let left = false; // a row no longer in the state the page lists
    for (const row of live.querySelectorAll("tr[data-node]")) {
      const state = snapshot.nodes[row.dataset.node];
      const badge = row.querySelector("[data-state]");
      if (state && badge.dataset.state !== state) {
        badge.dataset.state = state;
        badge.className = `badge astate-${state}`;
        badge.textContent = Radio.t(`astate.${state}`);
      }
      left = left || (filter !== "" && badge.dataset.state !== filter);
    }
    if (left || String(snapshot.matched) !== live.dataset.matched) changed.hidden = false;
    let total = 0;
    for (const cell of live.querySelectorAll(".count[data-state]")) {
      const n = snapshot.counts[cell.dataset.state] || 0;
      total += n;
      cell.textContent = Radio.number(n, 0);
    }
    live.querySelector(".count[data-total]").textContent = Radio.number(total, 0);
  }

  // The stream is asked for the rows this page shows, by their ids: whatever state they have
  // moved to since the page was drawn, their badges follow.
  const page = new URLSearchParams({ limit: live.dataset.limit });
  if (live.dataset.state) page.set("state", live.dataset.state);
  const shown = [...live.querySelectorAll("tr[data-node]")].map((row) => row.dataset.node);
  page.set("ids", shown.join(","));
  const events = new EventSource(`/api/v1/alerts/${encodeURIComponent(id)}/events?${page}`);
  events.addEventListener("snapshot", (event) => apply(JSON.parse(event.data)));
  events.addEventListener("error", () => Radio.say(msg, Radio.t("live.reconnecting"), "warn"));
  events.addEventListener("open", () => Radio.say(msg, "", null));
  window.addEventListener("pagehide", () => events.close());

  async function act(button, path, question, after) {
    if (!window.confirm(question)) return;
    button.disabled = true;
    try {
      after(await Radio.api("POST", path));
    } catch (err) {
      Radio.say(msg, err.message, "error");
    } finally {
      button.disabled = false;
    }
  }

  const cancel = document.getElementById("cancel-alert");
  if (cancel) {
    cancel.addEventListener("click", () =>
      act(cancel, `/api/v1/alerts/${id}/cancel`, Radio.t("alert.ask_cancel"), (a) => {
        showStatus(a.status);
        Radio.say(msg, Radio.t("alert.cancelled"), "ok");
      }),
    );
  }
  const clear = document.getElementById("all-clear");
  if (clear) {
    clear.addEventListener("click", () =>
      act(clear, `/api/v1/alerts/${id}/all-clear`, Radio.t("alert.ask_all_clear"), (a) => {
        window.location.assign(`/console/alerts/${encodeURIComponent(a.id)}`);
      }),
    );
  }
})();
