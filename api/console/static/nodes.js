// The node table's states follow the nodes live, without a reload: the stream is told the
// rows of this page and sends each change of their states.
"use strict";

(() => {
  const table = document.getElementById("node-table");
  const rows = {};
  for (const row of table.querySelectorAll("tr[data-node]")) rows[row.dataset.node] = row;
  const ids = Object.keys(rows);
  if (!ids.length) return;
  const query = new URLSearchParams({ ids: ids.join(",") });
  const events = new EventSource(`/console/nodes/events?${query}`);
  events.addEventListener("nodes", (event) => {
    for (const [id, status] of Object.entries(JSON.parse(event.data))) {
      const badge = rows[id] && rows[id].querySelector("[data-status]");
      if (badge && badge.dataset.status !== status) {
        badge.dataset.status = status;
        badge.className = `badge status-${status}`;
        badge.textContent = Radio.t(`status.${status}`);
      }
    }
  });
  window.addEventListener("pagehide", () => events.close());
})();
