// Alarms: acknowledge with a note, and follow changes live (the device-health event stream).
"use strict";

(() => {
  const table = document.getElementById("alarm-table");
  if (!table) return;
  const msg = document.getElementById("alarm-msg");

  function show(row, alarm) {
    row.dataset.state = alarm.state;
    const badge = row.querySelector('[data-field="state"]');
    badge.className = `badge alarm-${alarm.state}`;
    badge.textContent = Radio.t(`alarms.state_${alarm.state}`);
    if (alarm.state !== "open") {
      for (const control of row.querySelectorAll("td.decide > *")) control.remove();
    }
  }

  table.addEventListener("click", async (event) => {
    const button = event.target.closest("button.ack");
    if (!button) return;
    const row = button.closest("tr");
    const note = row.querySelector("input.note").value.trim();
    button.disabled = true;
    try {
      const alarm = await Radio.api("POST", `/api/v1/alarms/${button.dataset.id}/ack`, { note });
      show(row, alarm);
      Radio.say(msg, Radio.t("alarms.acked"), "ok");
    } catch (err) {
      Radio.say(msg, err.message, "error");
      button.disabled = false;
    }
  });

  const events = new EventSource("/api/v1/alarms/events");
  events.addEventListener("alarm", (event) => {
    const alarm = JSON.parse(event.data);
    const row = table.querySelector(`tr[data-alarm="${alarm.id}"]`);
    if (row) show(row, alarm);
    else Radio.say(msg, Radio.t("alarms.new", { node: alarm.node_id }), "warn");
  });
  window.addEventListener("pagehide", () => events.close());
})();
