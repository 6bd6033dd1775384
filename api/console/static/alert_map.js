// The alert's map: each village's nodes; a click on them or on the village's name ticks or unticks
// that village in the list, and the map follows the list's ticks (a ticked commune covers its
// villages).
"use strict";

(() => {
  const element = document.getElementById("alert-map");
  if (!element || typeof L === "undefined") return;
  const places = JSON.parse(document.getElementById("places-data").textContent);
  const drawn = places.filter((p) => p.nodes.length);
  if (!drawn.length) {
    element.closest(".pick-map-wrap").hidden = true;
    return;
  }
  const parent = Object.fromEntries(places.map((p) => [p.id, p.parent]));
  const box = (id) => document.getElementById(`area-${id}`);
  const FILL = { chosen: "#b3261e", free: "#5f6368" };

  const map = L.map(element, { attributionControl: Boolean(element.dataset.tiles) });
  Basemap.add(map, element.dataset.tiles);
  const points = drawn.flatMap((p) => p.nodes.map((n) => [n.lat, n.lon]));
  map.fitBounds(points, { padding: [40, 40], maxZoom: 16 });

  // Chosen: ticked itself, or within a ticked area (the list goes from the person's area down).
  function chosen(id) {
    for (let a = id, depth = 0; a && depth < 20; a = parent[a], depth += 1) {
      const b = box(a);
      if (b && b.checked) return true;
    }
    return false;
  }

  function toggle(id) {
    const b = box(id);
    if (!b) return;
    b.checked = !b.checked;
    b.dispatchEvent(new Event("change", { bubbles: true }));
  }

  const shown = drawn.map((place) => {
    const markers = place.nodes.map((n) => {
      const marker = L.circleMarker([n.lat, n.lon], {
        radius: 10,
        color: "#ffffff",
        weight: 2,
        fillOpacity: 1,
      })
        .bindTooltip(Radio.text(`${n.name} — ${place.name}`))
        .on("click", () => toggle(place.id))
        .addTo(map);
      const path = marker.getElement();
      path.classList.add("village-node");
      path.dataset.node = n.id;
      path.dataset.area = place.id;
      return marker;
    });
    const lat = place.nodes.reduce((s, n) => s + n.lat, 0) / place.nodes.length;
    const lon = place.nodes.reduce((s, n) => s + n.lon, 0) / place.nodes.length;
    const tag = document.createElement("span");
    tag.className = "tag";
    tag.textContent = place.name;
    const label = L.marker([lat, lon], {
      icon: L.divIcon({ className: "village-label", html: tag, iconSize: null }),
      keyboard: true,
    })
      .on("click", () => toggle(place.id))
      .addTo(map);
    const icon = label.getElement();
    icon.dataset.area = place.id;
    icon.setAttribute("role", "button");
    icon.setAttribute(
      "aria-label",
      Radio.t("alert.map_village", { name: place.name, n: place.nodes.length }),
    );
    // Leaflet's own Enter opens a popup; here Enter and Space choose, as on a button.
    icon.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        toggle(place.id);
      }
    });
    return { place, markers, icon };
  });

  function paint() {
    for (const { place, markers, icon } of shown) {
      const on = chosen(place.id);
      for (const marker of markers) {
        marker.setStyle({ fillColor: on ? FILL.chosen : FILL.free });
        marker.getElement().dataset.chosen = on;
      }
      icon.classList.toggle("chosen", on);
      icon.setAttribute("aria-pressed", String(on));
    }
  }

  document.getElementById("alert-form").addEventListener("change", (event) => {
    if (event.target.name === "areas") paint();
  });
  paint();
})();
