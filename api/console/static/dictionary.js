// The reading dictionary: try how a sentence is read, add an entry to a list, delete one.
"use strict";

(() => {
  const tryForm = document.getElementById("try");
  const tryText = document.getElementById("try-text");
  const tryArea = document.getElementById("try-area");
  const tryMsg = document.getElementById("try-msg");
  const addForm = document.getElementById("add");
  const addMsg = document.getElementById("add-msg");
  const listMsg = document.getElementById("list-msg");
  const table = document.getElementById("entries");
  const none = document.getElementById("entries-none");

  // The sentence is read with the chosen area's lists ("" is the list for every area).
  async function preview() {
    const text = tryText.value.trim();
    if (!text) {
      Radio.say(tryMsg, Radio.t("ann.need_text"), "error");
      return;
    }
    const button = document.getElementById("try-btn");
    button.disabled = true;
    try {
      const reading = await Radio.api("POST", "/api/v1/speech/preview", {
        text,
        area_id: tryArea.value || null,
      });
      const list = document.getElementById("try-sentences");
      list.replaceChildren(...reading.sentences.map((s) => Radio.text(s, "li")));
      document.getElementById("try-reading").hidden = false;
      Radio.say(tryMsg, "", null);
    } catch (err) {
      Radio.say(tryMsg, err.message, "error");
    } finally {
      button.disabled = false;
    }
  }

  tryForm.addEventListener("submit", (event) => {
    event.preventDefault();
    preview();
  });

  function row(entry, listName) {
    const tr = document.createElement("tr");
    tr.dataset.entry = entry.id;
    for (const value of [entry.term, entry.reading, listName, entry.created_by]) {
      tr.append(Radio.text(value, "td"));
    }
    const cell = document.createElement("td");
    const button = Radio.text(Radio.t("dict.delete"), "button");
    button.type = "button";
    button.className = "delete";
    button.dataset.id = entry.id;
    button.dataset.term = entry.term;
    button.setAttribute("aria-label", Radio.t("dict.delete_of", { term: entry.term }));
    cell.append(button);
    tr.append(cell);
    return tr;
  }

  addForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const area = document.getElementById("d-area");
    const term = document.getElementById("d-term").value.trim();
    const reading = document.getElementById("d-reading").value.trim();
    const button = document.getElementById("d-save");
    button.disabled = true;
    try {
      const entry = await Radio.api("POST", "/api/v1/speech/abbreviations", {
        term,
        reading,
        area_id: area.value || null,
      });
      const listName = area.selectedOptions[0].textContent.replace(/^(— )+/, "");
      table.tBodies[0].prepend(row(entry, listName));
      none.hidden = true;
      addForm.reset();
      Radio.say(addMsg, Radio.t("dict.added", { term: entry.term }), "ok");
      // The sentence being tried is read again with the new entry.
      if (tryText.value.trim()) await preview();
    } catch (err) {
      Radio.say(addMsg, err.message, "error");
    } finally {
      button.disabled = false;
    }
  });

  table.addEventListener("click", async (event) => {
    const b = event.target.closest("button.delete");
    if (!b) return;
    b.disabled = true;
    try {
      await Radio.api("DELETE", `/api/v1/speech/abbreviations/${encodeURIComponent(b.dataset.id)}`);
      b.closest("tr").remove();
      none.hidden = table.tBodies[0].rows.length > 0;
      Radio.say(listMsg, Radio.t("dict.deleted", { term: b.dataset.term }), "ok");
      if (tryText.value.trim()) await preview();
    } catch (err) {
      Radio.say(listMsg, err.message, "error");
      b.disabled = false;
    }
  });
})();
