// Agencies' warnings waiting on the home page: one tap sends one out (or dismisses it).
"use strict";

// A warning that arrives while the page is open: the page is read again to show it on top.
const CAPW_RECHECK_MS = 10000;

(() => {
  const shown = () =>
    new Set([...document.querySelectorAll("#cap-warnings li[data-warning]")].map((li) => li.dataset.warning));
  setInterval(async () => {
    try {
      const waiting = await Radio.api("GET", "/api/v1/cap/warnings");
      const seen = shown();
      if (waiting.some((w) => !seen.has(String(w.id)))) window.location.reload();
    } catch (err) {
      // Offline for a moment, or logged out: the next look (or the login page) will say.
    }
  }, CAPW_RECHECK_MS);

  const section = document.getElementById("cap-warnings");
  if (!section) return;
  const msg = document.getElementById("capw-msg");

  section.addEventListener("click", async (event) => {
    const button = event.target.closest("button.capw-approve, button.capw-reject");
    if (!button) return;
    const id = button.dataset.id;
    const item = section.querySelector(`li[data-warning="${id}"]`);
    const approving = button.classList.contains("capw-approve");
    for (const b of item.querySelectorAll("button")) b.disabled = true;
    try {
      const action = approving ? "approve" : "reject";
      const answer = await Radio.api("POST", `/api/v1/cap/warnings/${id}/${action}`);
      Radio.say(msg, Radio.t(approving ? "capw.done" : "capw.rejected"), "ok");
      if (approving) {
        window.location.assign(`/console/alerts/${encodeURIComponent(answer.id)}`);
        return;
      }
      item.remove();
    } catch (err) {
      Radio.say(msg, err.message, "error");
      for (const b of item.querySelectorAll("button")) b.disabled = false;
    }
  });
})();
