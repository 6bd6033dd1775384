// The playlist builder: entries added, reordered and removed in the page, saved in one call.
"use strict";

(() => {
  const form = document.getElementById("playlist-form");
  const data = JSON.parse(document.getElementById("playlists-data").textContent);
  const listMsg = document.getElementById("list-msg");
  const saved = Object.fromEntries(data.playlists.map((p) => [String(p.id), p]));

  function clock(seconds) {
    const s = Math.round(seconds);
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  }

  function refused(err, playlist) {
    // A 409 here means a schedule plays the playlist: say which, and what to do.
    if (err.status !== 409) return err.message;
    const ids = (playlist && playlist.used_by_schedules) || [];
    return ids.length ? Radio.t("pl.in_use_by", { ids: ids.join(", ") }) : Radio.t("pl.in_use");
  }

  if (form) {
    const list = document.getElementById("entries");
    const msg = document.getElementById("pl-msg");
    const moved = document.getElementById("pl-moved");
    const heading = document.getElementById("builder-h");
    const cancel = document.getElementById("pl-cancel");
    let entries = [];
    let editing = null;

    const fallbackSelect = document.getElementById("pl-stream-fallback");

    // The parsed address, or null when it is not one.
    function parsed(url) {
      try {
        return new URL(url);
      } catch (err) {
        return null;
      }
    }

    function hostOf(url) {
      const u = parsed(url);
      return (u && u.hostname) || url;
    }

    // The input's number when it lies in [lo, hi]; otherwise it says why, takes the focus and
    // gives null.
    function numberIn(input, lo, hi, why) {
      const value = Number(input.value);
      if (input.value && value >= lo && value <= hi) return value;
      Radio.say(msg, Radio.t(why), "error");
      input.focus();
      return null;
    }

    // A stream's fallback recording, named as the library names it.
    function titleOf(id) {
      const option = fallbackSelect.querySelector(`option[value="${Number(id)}"]`);
      return option ? option.dataset.title : String(id);
    }

    const label = (e) => {
      if (e.kind === "announcement") return e.title;
      if (e.kind === "chime") return Radio.t("pl.chime");
      if (e.kind === "silence") return Radio.t("pl.silence_of", { s: e.duration_ms / 1000 });
      const host = hostOf(e.url);
      if (e.announcement_id) {
        return Radio.t("pl.stream_fallback_of", { host, fallback: titleOf(e.announcement_id) });
      }
      return Radio.t("pl.stream_of", { host });
    };

    function button(cls, text, name, disabled) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = cls;
      b.textContent = text;
      b.setAttribute("aria-label", name);
      b.disabled = disabled;
      return b;
    }

    function render(focus) {
      list.replaceChildren();
      entries.forEach((e, n) => {
        const li = document.createElement("li");
        li.className = "entry";
        li.dataset.index = n;
        li.dataset.kind = e.kind;
        if (e.announcement_id) li.dataset.announcement = e.announcement_id;
        const what = document.createElement("span");
        what.className = "what";
        what.textContent = label(e);
        const len = document.createElement("span");
        len.className = "len muted";
        len.textContent = e.seconds === null ? Radio.t("pl.unknown_length") : clock(e.seconds);
        const tools = document.createElement("span");
        tools.className = "tools";
        const name = label(e);
        tools.append(
          button("up", "↑", Radio.t("pl.up_of", { what: name }), n === 0),
          button("down", "↓", Radio.t("pl.down_of", { what: name }), n === entries.length - 1),
          button("remove", Radio.t("pl.remove"), Radio.t("pl.remove_of", { what: name }), false),
        );
        li.append(what, " ", len, " ", tools);
        list.append(li);
      });
      document.getElementById("no-entries").hidden = entries.length > 0;
      const known = entries.filter((e) => e.seconds !== null);
      const total = known.reduce((sum, e) => sum + e.seconds, 0);
      document.getElementById("pl-total").textContent = clock(total);
      document.getElementById("pl-total-note").textContent =
        known.length < entries.length ? Radio.t("pl.chime_later") : "";
      if (focus) {
        const [index, cls] = focus;
        const li = list.querySelector(`li[data-index="${index}"]`);
        const wanted = li && li.querySelector(`button.${cls}`);
        // At the top or bottom the pressed button is disabled: keep the focus in the entry.
        const target =
          wanted && !wanted.disabled ? wanted : li && li.querySelector("button:not(:disabled)");
        if (target) target.focus();
        else heading.focus();
      }
    }

    function add(entry) {
      entries.push(entry);
      render();
      Radio.say(msg, Radio.t("pl.added", { what: label(entry) }), null);
    }

    const library = document.getElementById("pl-library");
    if (library) {
      document.getElementById("add-announcement").addEventListener("click", () => {
        const option = library.selectedOptions[0];
        if (!option) return;
        add({
          kind: "announcement",
          announcement_id: Number(option.value),
          title: option.dataset.title,
          seconds: Number(option.dataset.seconds),
        });
      });
    }
    document.getElementById("add-chime").addEventListener("click", () => {
      add({ kind: "chime", seconds: data.chime_s });
    });
    document.getElementById("add-silence").addEventListener("click", () => {
      const seconds = numberIn(document.getElementById("pl-silence"), 0.1, 600, "pl.bad_silence");
      if (seconds === null) return;
      const ms = Math.round(seconds * 1000);
      add({ kind: "silence", duration_ms: ms, seconds: ms / 1000 });
    });

    // A relayed station: its address, how long, and what plays if it cannot be reached.
    document.getElementById("add-stream").addEventListener("click", () => {
      const urlInput = document.getElementById("pl-stream-url");
      const minutesInput = document.getElementById("pl-stream-minutes");
      const url = urlInput.value.trim();
      const u = parsed(url);
      if (!u || !["http:", "https:"].includes(u.protocol) || /\s/.test(url)) {
        Radio.say(msg, Radio.t("pl.bad_stream_url"), "error");
        urlInput.focus();
        return;
      }
      const minutes = numberIn(minutesInput, 1, 360, "pl.bad_stream_minutes");
      if (minutes === null) return;
      const ms = Math.round(minutes * 60000);
      const entry = {
        kind: "stream",
        url,
        duration_ms: ms,
        seconds: ms / 1000,
        via_controller: document.getElementById("pl-stream-via").checked,
      };
      const format = document.getElementById("pl-stream-format").value;
      if (format) entry.format = format;
      if (fallbackSelect.value) entry.announcement_id = Number(fallbackSelect.value);
      add(entry);
      urlInput.value = "";
    });

    list.addEventListener("click", (event) => {
      const b = event.target.closest("button");
      if (!b) return;
      const n = Number(b.closest("li").dataset.index);
      const entry = entries[n];
      if (b.classList.contains("remove")) {
        entries.splice(n, 1);
        render([Math.min(n, entries.length - 1), "remove"]);
        Radio.say(moved, Radio.t("pl.removed", { what: label(entry) }), null);
        return;
      }
      const to = b.classList.contains("up") ? n - 1 : n + 1;
      if (to < 0 || to >= entries.length) return;
      entries.splice(n, 1);
      entries.splice(to, 0, entry);
      render([to, b.classList.contains("up") ? "up" : "down"]);
      Radio.say(
        moved,
        Radio.t("pl.moved", { what: label(entry), n: to + 1, of: entries.length }),
        null,
      );
    });

    function body() {
      return {
        title: document.getElementById("pl-title").value.trim(),
        items: entries.map((e) => {
          if (e.kind === "announcement") {
            return { kind: e.kind, announcement_id: e.announcement_id };
          }
          if (e.kind === "chime") return { kind: e.kind };
          if (e.kind === "silence") return { kind: e.kind, duration_ms: e.duration_ms };
          // A relayed station, kept as it was saved.
          const s = {
            kind: e.kind,
            url: e.url,
            duration_ms: e.duration_ms,
            via_controller: e.via_controller,
          };
          if (e.format) s.format = e.format;
          if (e.announcement_id) s.announcement_id = e.announcement_id;
          return s;
        }),
      };
    }

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!entries.length) {
        Radio.say(msg, Radio.t("pl.need_entry"), "error");
        return;
      }
      const save = document.getElementById("pl-save");
      save.disabled = true;
      Radio.say(msg, Radio.t("pl.saving"), null);
      try {
        const made = editing
          ? await Radio.api("PUT", `/api/v1/playlists/${editing}`, body())
          : await Radio.api("POST", "/api/v1/playlists", body());
        window.location.assign(`/console/playlists?saved=${made.id}`);
      } catch (err) {
        Radio.say(msg, refused(err, editing ? saved[editing] : null), "error");
        save.disabled = false;
      }
    });

    function edit(id) {
      const p = saved[id];
      editing = p.id;
      document.getElementById("pl-title").value = p.title;
      entries = p.items.map((i) => ({
        kind: i.kind,
        announcement_id: i.announcement_id,
        title: i.title,
        seconds: i.duration_s,
        duration_ms: Math.round(i.duration_s * 1000),
        url: i.url,
        format: i.format,
        via_controller: i.via_controller,
      }));
      heading.textContent = Radio.t("pl.editing", { title: p.title });
      cancel.hidden = false;
      render();
      Radio.say(msg, "", null);
      heading.focus();
    }

    cancel.addEventListener("click", () => {
      editing = null;
      entries = [];
      form.reset();
      heading.textContent = heading.dataset.new;
      cancel.hidden = true;
      render();
      heading.focus();
    });

    document.addEventListener("click", (event) => {
      const b = event.target.closest("#playlists button.edit");
      if (b) edit(b.dataset.id);
    });
    render();
  }

  const table = document.getElementById("playlists");
  if (!table) return;
  table.addEventListener("click", async (event) => {
    const b = event.target.closest("button.delete");
    if (!b) return;
    const p = saved[b.dataset.id];
    if (!window.confirm(Radio.t("pl.ask_delete", { title: p.title }))) return;
    b.disabled = true;
    try {
      await Radio.api("DELETE", `/api/v1/playlists/${p.id}`);
      b.closest("tr").remove();
      Radio.say(listMsg, Radio.t("pl.deleted", { title: p.title }), "ok");
    } catch (err) {
      Radio.say(listMsg, refused(err, p), "error");
      b.disabled = false;
    }
  });
})();
