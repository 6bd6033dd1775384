// The map of nodes coloured by state, live; a plain grid stands in for tiles when offline.
"use strict";

(() => {
  const element = document.getElementById("map");
  const nodes = JSON.parse(document.getElementById("nodes-data").textContent);
  const tiles = element.dataset.tiles;
  const COLOURS = {
    online: "#1b7f3b",
    offline: "#b3261e",
    lost: "#a84f00",
    flapping: "#a84f00",
    unknown: "#5f6368",
  };
  const colour = (status) => COLOURS[status] || COLOURS.unknown;

  const map = L.map(element, { attributionControl: Boolean(tiles) });
  Basemap.add(map, tiles);

  // The view first: markers get their elements only once the map has one.
  const placed = nodes.map((n) => [n.lat, n.lon]);
  if (placed.length) map.fitBounds(placed, { padding: [30, 30], maxZoom: 16 });
  else map.setView([16.0, 106.0], 6);

  const markers = {};
  function mark(marker, node, status) {
    marker.setStyle({ fillColor: colour(status) });
    const path = marker.getElement();
    path.setAttribute("class", `leaflet-interactive node-marker status-${status}`);
    path.dataset.node = node.id;
    path.dataset.status = status;
    const label = `${node.name} (${node.area}) — ${Radio.t(`status.${status}`)}`;
    marker.setTooltipContent(Radio.text(label));
  }
  for (const node of nodes) {
    const marker = L.circleMarker([node.lat, node.lon], {
      radius: 9,
      color: "#ffffff",
      weight: 2,
      fillOpacity: 1,
    }).bindTooltip(Radio.text(node.name));
    marker.addTo(map);
    markers[node.id] = { marker, node };
    mark(marker, node, node.status);
  }

  // Every node's state (placed or not): the stream sends them all, then each change.
  const states = {};
  function count() {
    const totals = {};
    for (const s of Object.values(states)) totals[s] = (totals[s] || 0) + 1;
    for (const cell of document.querySelectorAll(".legend .count[data-status]")) {
      cell.textContent = totals[cell.dataset.status] || 0;
    }
  }

  const area = element.dataset.area;
  const events = new EventSource(
    `/console/nodes/events${area ? `?${new URLSearchParams({ area })}` : ""}`,
  );
  events.addEventListener("nodes", (event) => {
    const changed = JSON.parse(event.data);
    Object.assign(states, changed);
    for (const [id, status] of Object.entries(changed)) {
      const known = markers[id];
      if (known && known.marker.getElement().dataset.status !== status) {
        mark(known.marker, known.node, status);
      }
    }
    count();
  });
  window.addEventListener("pagehide", () => events.close());
})();
