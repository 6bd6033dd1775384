// Approving or rejecting drafts: each button is one call to the schedules API.
"use strict";

(() => {
  const table = document.getElementById("drafts");
  if (!table) return;
  const msg = document.getElementById("approve-msg");

  table.addEventListener("click", async (event) => {
    const button = event.target.closest("button.approve, button.reject");
    if (!button) return;
    const id = button.dataset.id;
    const row = table.querySelector(`tr[data-schedule="${id}"]`);
    const approving = button.classList.contains("approve");
    button.disabled = true;
    try {
      if (approving) await Radio.api("POST", `/api/v1/schedules/${id}/approve`);
      else {
        const reason = row.querySelector("input.reason").value.trim();
        await Radio.api("POST", `/api/v1/schedules/${id}/reject`, { reason });
      }
      Radio.say(msg, Radio.t(approving ? "approve.done" : "approve.rejected"), "ok");
      row.remove();
      if (!table.querySelector("tbody tr")) {
        const none = document.createElement("p");
        none.id = "no-drafts";
        none.textContent = Radio.t("approve.none");
        table.closest(".table-wrap").replaceWith(none);
      }
    } catch (err) {
      Radio.say(msg, err.message, "error");
      button.disabled = false;
    }
  });
})();
