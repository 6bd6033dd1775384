// The recent announcements follow what is written, here or by a colleague, without a reload:
// the server sends the list again when it changed, and the rows are rebuilt as text.
"use strict";

(() => {
  const table = document.getElementById("recent");
  if (!table || !table.dataset.live) return;
  const body = table.querySelector("tbody");

  function row(a) {
    const tr = document.createElement("tr");
    tr.dataset.announcement = a.id;
    const title = document.createElement("td");
    title.textContent = a.title;
    if (a.recording) {
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.textContent = Radio.t("ann.recording");
      title.append(" ", badge);
    }
    const created = document.createElement("td");
    created.textContent = a.created;
    const length = document.createElement("td");
    length.textContent = a.length;
    const listen = document.createElement("td");
    if (a.media) {
      const audio = document.createElement("audio");
      audio.controls = true;
      audio.preload = "none";
      audio.src = `/console/media/${encodeURIComponent(a.media)}.mp3`;
      audio.setAttribute("aria-label", Radio.t("ann.listen_to", { title: a.title }));
      listen.append(audio);
    }
    const actions = document.createElement("td");
    const link = document.createElement("a");
    link.href = `/console/calendar?announcement=${encodeURIComponent(a.id)}#schedule`;
    link.textContent = Radio.t("ann.schedule_it");
    actions.append(link);
    tr.append(title, created, length, listen, actions);
    return tr;
  }

  function apply(rows) {
    // Rows already shown keep their element, so a player in use is not interrupted.
    const shown = new Map([...body.querySelectorAll("tr")].map((tr) => [tr.dataset.announcement, tr]));
    body.replaceChildren(...rows.map((a) => shown.get(String(a.id)) || row(a)));
    document.getElementById("recent-wrap").hidden = !rows.length;
    document.getElementById("recent-none").hidden = rows.length > 0;
  }

  const events = new EventSource(table.dataset.live);
  events.addEventListener("recent", (event) => apply(JSON.parse(event.data)));
  window.addEventListener("pagehide", () => events.close());
})();
