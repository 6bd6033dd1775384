// The node table's states follow the nodes live, without a reload.
"use strict";

(() => {
  const table = document.getElementById("node-table");
  const events = new EventSource("/console/nodes/events");
  events.addEventListener("nodes", (event) => {
    const states = JSON.parse(event.data);
    for (const row of table.querySelectorAll("tr[data-node]")) {
      const status = states[row.dataset.node];
      const badge = row.querySelector("[data-status]");
      if (status && badge.dataset.status !== status) {
        badge.dataset.status = status;
        badge.className = `badge status-${status}`;
        badge.textContent = Radio.t(`status.${status}`);
      }
    }
  });
  window.addEventListener("pagehide", () => events.close());
})();
