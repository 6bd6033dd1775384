// Agencies' warnings waiting on the home page: one tap sends one out (or dismisses it).
"use strict";

(() => {
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
