// A map's background: the configured tile server, or a plain grid when there is none (offline).
"use strict";

const Basemap = {
  add(map, tiles) {
    if (tiles) {
      L.tileLayer(tiles, { maxZoom: 19 }).addTo(map);
      return;
    }
    // No tile server: a light grid, so that distance and zoom still read without the internet.
    const Grid = L.GridLayer.extend({
      createTile() {
        const tile = document.createElement("canvas");
        tile.width = 256;
        tile.height = 256;
        const g = tile.getContext("2d");
        g.fillStyle = "#f4f6f8";
        g.fillRect(0, 0, 256, 256);
        g.strokeStyle = "#c9d1d9";
        g.strokeRect(0.5, 0.5, 256, 256);
        return tile;
      },
    });
    new Grid().addTo(map);
  },
};
