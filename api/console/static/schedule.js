// The scheduling form (a new schedule on the calendar, or a change on a schedule's page) and a
// schedule's actions: skip one day, cancel. Each is one call to the schedules API.
"use strict";

(() => {
  const form = document.getElementById("schedule-form");
  const data = document.getElementById("schedule-data");
  const page = data ? JSON.parse(data.textContent) : null;
  const status = document.getElementById("sched-msg");

  if (form) {
    const msg = document.getElementById("schedule-msg");
    const repeat = document.getElementById("s-repeat");
    const weekdays = document.getElementById("s-weekdays");
    const date = document.getElementById("s-date");
    const CODES = ["SU", "MO", "TU", "WE", "TH", "FR", "SA"]; // as Date.getDay() counts
    let daysTouched = false;

    const showRepeat = () => {
      weekdays.hidden = repeat.value !== "WEEKLY";
      document.getElementById("s-until-wrap").hidden = !repeat.value;
    };
    repeat.addEventListener("change", showRepeat);
    showRepeat();
    weekdays.addEventListener("change", () => {
      daysTouched = true;
    });
    // Days and times are typed as text (dd/mm/yyyy, 24-hour HH:MM): a mistyped one is named
    // under its field, with the typed text left as it is to correct.
    const fields = [
      ["s-date", Radio.dayFromText, "cal.bad_date", true],
      ["s-time", Radio.clockFromText, "cal.bad_time", true],
      ["s-until", Radio.dayFromText, "cal.bad_until", false],
    ];
    const check = (id, read, word, needed) => {
      const input = document.getElementById(id);
      const error = document.getElementById(`${id}-err`);
      const typed = input.value.trim();
      const value = typed ? read(typed) : null;
      const bad = (typed && !value) || (needed && !typed);
      error.textContent = bad ? Radio.t(word) : "";
      error.hidden = !bad;
      if (bad) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
      return bad ? undefined : value;
    };
    // Checked on sending; a field said to be wrong is checked again as it is corrected (not
    // on leaving it the first time: a message appearing then would move the button away).
    for (const f of fields) {
      const input = document.getElementById(f[0]);
      input.addEventListener("input", () => {
        if (input.hasAttribute("aria-invalid")) check(...f);
      });
    }

    // Until the person picks days, the weekly day follows the date chosen.
    date.addEventListener("change", () => {
      const day = Radio.dayFromText(date.value);
      if (daysTouched || !day) return;
      const code = CODES[new Date(`${day}T12:00:00`).getDay()];
      for (const box of weekdays.querySelectorAll("input")) box.checked = box.value === code;
    });
    Radio.coverChildren(form, "targets");

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const ticked = (name) =>
        [...form.querySelectorAll(`input[name="${name}"]:checked:not(:disabled)`)].map(
          (i) => i.value,
        );
      const areas = ticked("targets");
      const groups = ticked("groups");
      const nodes = page ? page.nodes : [];
      if (!areas.length && !groups.length && !nodes.length) {
        Radio.say(msg, Radio.t("cal.need_target"), "error");
        return;
      }
      // The last day counts only for a repeating schedule (its field is hidden otherwise).
      const read = repeat.value ? fields : fields.slice(0, 2);
      const [day, time, until = null] = read.map((f) => check(...f));
      const wrong = read.find((f) => document.getElementById(f[0]).hasAttribute("aria-invalid"));
      if (wrong) {
        document.getElementById(wrong[0]).focus();
        Radio.say(msg, Radio.t(wrong[2]), "error");
        return;
      }
      const body = {
        announcement_id: Number(document.getElementById("s-ann").value),
        // No offset: the API reads it as Viet Nam time, whatever the browser's clock says.
        starts_at: `${day}T${time}`,
        targets: { areas, groups, nodes },
        priority: document.getElementById("s-priority").value,
      };
      if (repeat.value === "WEEKLY") {
        const days = ticked("weekday");
        if (!days.length) {
          Radio.say(msg, Radio.t("cal.need_weekday"), "error");
          return;
        }
        body.rrule = `FREQ=WEEKLY;BYDAY=${days.join(",")}`;
      } else if (repeat.value) body.rrule = `FREQ=${repeat.value}`;
      else if (page) body.rrule = null; // a change back to playing once
      if (repeat.value && until) body.ends_on = until;
      else if (page) body.ends_on = null;
      const title = document.getElementById("s-title");
      if (title) body.title = title.value.trim();
      const button = document.getElementById("schedule-btn");
      button.disabled = true;
      try {
        if (page) {
          const changed = await Radio.api("PATCH", `/api/v1/schedules/${page.id}`, body);
          const params = new URLSearchParams({ day, done: changed.status });
          window.location.assign(`/console/schedules/${page.id}?${params}`);
          return;
        }
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
  }

  if (!page) return;
  document.querySelector("main").addEventListener("click", async (event) => {
    const button = event.target.closest("button.skip-day");
    if (!button) return;
    const day = button.dataset.day;
    button.disabled = true;
    try {
      await Radio.api("POST", `/api/v1/schedules/${page.id}/skip`, { day });
      const shown = day.split("-").reverse().join("/");
      Radio.say(status, Radio.t("sched.skipped", { day: shown }), "ok");
      for (const item of document.querySelectorAll(`#coming li[data-day="${day}"]`)) item.remove();
      const chosen = document.getElementById("skip-chosen");
      if (chosen && chosen.querySelector(`[data-day="${day}"]`)) chosen.hidden = true;
    } catch (err) {
      Radio.say(status, err.message, "error");
      button.disabled = false;
    }
  });

  // A skipped day played again: the schedule's excluded days without it.
  document.querySelector("main").addEventListener("click", async (event) => {
    const button = event.target.closest("button.restore-day");
    if (!button) return;
    button.disabled = true;
    const exdates = page.exdates.filter((d) => d !== button.dataset.day);
    try {
      await Radio.api("PATCH", `/api/v1/schedules/${page.id}`, { exdates });
      const params = new URLSearchParams({ day: page.day, done: "restored" });
      window.location.assign(`/console/schedules/${page.id}?${params}`);
    } catch (err) {
      Radio.say(status, err.message, "error");
      button.disabled = false;
    }
  });

  const cancel = document.getElementById("cancel-schedule");
  if (cancel) {
    cancel.addEventListener("click", async () => {
      if (!window.confirm(Radio.t("sched.ask_cancel"))) return;
      cancel.disabled = true;
      try {
        await Radio.api("DELETE", `/api/v1/schedules/${page.id}`);
        const params = new URLSearchParams({ day: page.day, done: "cancelled" });
        window.location.assign(`/console/calendar?${params}`);
      } catch (err) {
        Radio.say(status, err.message, "error");
        cancel.disabled = false;
      }
    });
  }
})();
