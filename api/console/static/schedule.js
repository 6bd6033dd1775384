// The calendar's scheduling form: one call to the schedules API, then the calendar at that day.
"use strict";

(() => {
  const form = document.getElementById("schedule-form");
  if (!form) return;
  const msg = document.getElementById("schedule-msg");
  const time = document.getElementById("s-time");
  if (!time.value) {
    const next = new Date(Date.now() + 3600 * 1000);
    time.value = `${String(next.getHours()).padStart(2, "0")}:00`;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const day = document.getElementById("s-date").value;
    const ticked = (name) =>
      [...form.querySelectorAll(`input[name="${name}"]:checked`)].map((i) => i.value);
    const areas = ticked("targets");
    const groups = ticked("groups");
    if (!areas.length && !groups.length) {
      Radio.say(msg, Radio.t("cal.need_target"), "error");
      return;
    }
    const body = {
      announcement_id: Number(document.getElementById("s-ann").value),
      // No offset: the API reads it as Vietnamese local time.
      starts_at: `${day}T${time.value.length === 5 ? `${time.value}:00` : time.value}`,
      targets: { areas, groups },
      priority: document.getElementById("s-priority").value,
    };
    const repeat = document.getElementById("s-repeat").value;
    if (repeat) body.rrule = `FREQ=${repeat}`;
    const until = document.getElementById("s-until").value;
    if (until) body.ends_on = until;
    const button = document.getElementById("schedule-btn");
    button.disabled = true;
    try {
      const made = await Radio.api("POST", "/api/v1/schedules", body);
      const params = new URLSearchParams({
        view: form.dataset.view,
        day,
        area: form.dataset.area,
        done: made.status,
      });
      window.location.assign(`/console/calendar?${params}`);
    } catch (err) {
      Radio.say(msg, err.message, "error");
      button.disabled = false;
    }
  });
})();
