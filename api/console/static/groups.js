// Named groups of loudspeakers: made from one area's nodes, deleted when no schedule uses them.
"use strict";

(() => {
  const form = document.getElementById("group-form");
  const table = document.getElementById("groups");

  if (form) {
    const msg = document.getElementById("group-msg");
    const name = document.getElementById("g-name");
    const id = document.getElementById("g-id");
    const area = document.getElementById("g-area");
    let idTouched = false;

    // "Loa chợ Đông" → "loa-cho-dong": the id is ASCII, the name stays as people write it.
    function slug(text) {
      return text
        .normalize("NFD")
        .replace(/[\u0300-\u036f]/g, "")
        .replace(/[đĐ]/g, "d")
        .toLowerCase()
        .replace(/[^a-z0-9]+/g, "-")
        .replace(/^-+|-+$/g, "")
        .slice(0, 64);
    }

    name.addEventListener("input", () => {
      if (!idTouched) id.value = slug(name.value);
    });
    id.addEventListener("input", () => {
      idTouched = true;
    });

    // Only the nodes within the chosen area may join; the others are hidden and unticked.
    function offer() {
      for (const row of form.querySelectorAll(".check[data-within]")) {
        const inside = row.dataset.within.split(" ").includes(area.value);
        row.hidden = !inside;
        if (!inside) row.querySelector("input").checked = false;
      }
    }
    area.addEventListener("change", offer);
    offer();

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const nodes = [...form.querySelectorAll('input[name="nodes"]:checked')].map((i) => i.value);
      if (!nodes.length) {
        Radio.say(msg, Radio.t("grp.need_node"), "error");
        return;
      }
      const button = document.getElementById("g-save");
      button.disabled = true;
      try {
        await Radio.api("POST", "/api/v1/groups", {
          id: id.value.trim(),
          name: name.value.trim(),
          area_id: area.value,
          nodes,
        });
        window.location.reload();
      } catch (err) {
        Radio.say(msg, err.message, "error");
        button.disabled = false;
      }
    });
  }

  if (!table) return;
  const listMsg = document.getElementById("groups-msg");
  table.addEventListener("click", async (event) => {
    const b = event.target.closest("button.delete");
    if (!b) return;
    if (!window.confirm(Radio.t("grp.ask_delete", { name: b.dataset.name }))) return;
    b.disabled = true;
    try {
      await Radio.api("DELETE", `/api/v1/groups/${encodeURIComponent(b.dataset.id)}`);
      b.closest("tr").remove();
      Radio.say(listMsg, Radio.t("grp.deleted", { name: b.dataset.name }), "ok");
    } catch (err) {
      Radio.say(listMsg, err.message, "error");
      b.disabled = false;
    }
  });
})();
