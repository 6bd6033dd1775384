// Named groups of loudspeakers: made from one area's nodes (found by name as the person types),
// deleted when no schedule uses them.
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

    // The members are found as the person types (a province has thousands of loudspeakers):
    // a page of the chosen area's nodes matching the text, ticked to join. Only the nodes
    // within the area may join; choosing another area unticks them all.
    const search = document.getElementById("g-search");
    const found = document.getElementById("g-found");
    const results = document.getElementById("g-results");
    const chosenList = document.getElementById("g-chosen");
    const noneChosen = document.getElementById("g-none-chosen");
    const chosen = new Map(); // id → name, in the order ticked
    const SHOWN = 50;
    let asked = 0; // the latest search: an older answer arriving late is dropped
    let timer = null;

    function label(id, name) {
      return `${name} (${id})`;
    }

    function showChosen() {
      chosenList.replaceChildren();
      for (const [nodeId, nodeName] of chosen) {
        const li = document.createElement("li");
        li.dataset.node = nodeId;
        li.append(Radio.text(label(nodeId, nodeName)), " ");
        const remove = document.createElement("button");
        remove.type = "button";
        remove.textContent = "✕";
        remove.setAttribute("aria-label", Radio.t("grp.remove_of", { name: nodeName }));
        remove.addEventListener("click", () => {
          chosen.delete(nodeId);
          const box = document.getElementById(`gn-${nodeId}`);
          if (box) box.checked = false;
          showChosen();
          search.focus();
        });
        li.append(remove);
        chosenList.append(li);
      }
      noneChosen.hidden = chosen.size > 0;
    }

    function showResults(page) {
      results.replaceChildren();
      for (const n of page.items) {
        const row = document.createElement("div");
        row.className = "check";
        const box = document.createElement("input");
        box.type = "checkbox";
        box.name = "nodes";
        box.value = n.id;
        box.id = `gn-${n.id}`;
        box.checked = chosen.has(n.id);
        box.addEventListener("change", () => {
          if (box.checked) chosen.set(n.id, n.name);
          else chosen.delete(n.id);
          showChosen();
        });
        const text = document.createElement("label");
        text.htmlFor = box.id;
        text.append(Radio.text(n.name), " ", Radio.text(`(${n.id})`, "span"));
        text.lastChild.className = "muted";
        row.append(box, text);
        results.append(row);
      }
      const total = Radio.number(page.total, 0);
      if (!page.total) Radio.say(found, Radio.t("grp.found_none"));
      else if (page.total > page.items.length) {
        Radio.say(found, Radio.t("grp.found", { shown: Radio.number(page.items.length, 0), total }));
      } else Radio.say(found, Radio.t("grp.found_all", { total }));
    }

    async function find() {
      const mine = ++asked;
      const params = new URLSearchParams({ area_id: area.value, limit: String(SHOWN) });
      const text = search.value.trim();
      if (text) params.set("q", text);
      try {
        const page = await Radio.api("GET", `/api/v1/nodes?${params}`);
        if (mine === asked) showResults(page);
      } catch (err) {
        if (mine === asked) Radio.say(found, err.message, "error");
      }
    }

    search.addEventListener("input", () => {
      clearTimeout(timer);
      Radio.say(found, Radio.t("grp.searching"));
      timer = setTimeout(find, 250);
    });
    search.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault(); // a search, not the form's submission
        clearTimeout(timer);
        find();
      }
    });
    area.addEventListener("change", () => {
      if (chosen.size) {
        chosen.clear();
        showChosen();
        Radio.say(msg, Radio.t("grp.cleared"), "warn");
      }
      find();
    });
    showChosen();
    find();

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const nodes = [...chosen.keys()];
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
