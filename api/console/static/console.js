// Shared by every console page: the CSRF header, calls to the JSON API, messages in the page.
"use strict";

const Radio = (() => {
  const meta = document.querySelector('meta[name="csrf-token"]');
  const csrf = meta ? meta.content : "";
  const words = JSON.parse(document.getElementById("words").textContent);

  function t(key, values) {
    let text = words[key] || key;
    // A function replacement: a value's own `$&` or `$1` stays as written.
    for (const [k, v] of Object.entries(values || {})) text = text.replace(`{${k}}`, () => v);
    return text;
  }

  class ApiError extends Error {
    constructor(status, message, detail) {
      super(message);
      this.status = status;
      this.detail = detail || ""; // the API's own words, for a page that explains it better
    }
  }

  function detailOf(data) {
    if (data && typeof data.detail === "string") return data.detail;
    if (data && Array.isArray(data.detail)) {
      return data.detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
    }
    return "";
  }

  function explain(status, data) {
    // The person reads words built from the API's code (or its status), in their language;
    // the API's own detail is English for programs and stays on the error for a page to use.
    const coded = data && typeof data.code === "string" && words[`code.${data.code}`];
    return coded || words[`status.${status}`] || words["status.other"];
  }

  // Times and numbers as people here write them: Viet Nam time whatever the computer's clock
  // says, dd/mm/yyyy and 13:20, decimals with a comma in Vietnamese.
  const lang = document.documentElement.lang === "en" ? "en-GB" : "vi-VN";
  const zone = "Asia/Ho_Chi_Minh";
  const clockParts = new Intl.DateTimeFormat(lang, {
    timeZone: zone,
    day: "2-digit",
    month: "2-digit",
    year: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hourCycle: "h23",
  });

  function parts(value) {
    // A time from the API without an offset is UTC (as the server's own pages take it).
    const iso = typeof value === "string" && !/(Z|[+-]\d\d:?\d\d)$/.test(value) ? `${value}Z` : value;
    const date = value instanceof Date ? value : new Date(iso);
    if (Number.isNaN(date.getTime())) return null;
    return Object.fromEntries(clockParts.formatToParts(date).map((p) => [p.type, p.value]));
  }

  // "05/12/2026 13:20"; with `seconds`, "05/12/2026 13:20:15"; `hourOnly`: "13:20".
  function time(value, options) {
    const p = parts(value);
    if (!p) return "—";
    const o = options || {};
    const clock = `${p.hour}:${p.minute}${o.seconds ? `:${p.second}` : ""}`;
    return o.hourOnly ? clock : `${p.day}/${p.month}/${p.year} ${clock}`;
  }

  function number(value, digits) {
    const d = digits === undefined ? 1 : digits;
    return new Intl.NumberFormat(lang, {
      minimumFractionDigits: d,
      maximumFractionDigits: d,
    }).format(value);
  }

  // Text from users (a node's name, a title) goes into the page as text, never as HTML: for
  // libraries that take "content" (Leaflet's tooltips and popups), an element holding the text.
  function text(value, tag) {
    const element = document.createElement(tag || "span");
    element.textContent = value;
    return element;
  }

  // Every write carries the session's CSRF token; the cookie goes by itself (same origin).
  async function api(method, path, body) {
    const options = { method, headers: { "X-CSRF-Token": csrf }, credentials: "same-origin" };
    if (body instanceof FormData) options.body = body;
    else if (body !== undefined) {
      options.body = JSON.stringify(body);
      options.headers["Content-Type"] = "application/json";
    }
    let response;
    try {
      response = await fetch(path, options);
    } catch (err) {
      throw new ApiError(0, words["status.network"]);
    }
    let data = null;
    try {
      data = await response.json();
    } catch (err) {
      data = null;
    }
    if (!response.ok) {
      throw new ApiError(response.status, explain(response.status, data), detailOf(data));
    }
    return data;
  }

  function say(element, text, kind) {
    if (!element) return;
    element.textContent = text;
    element.classList.remove("ok", "error", "warn");
    if (kind) element.classList.add(kind);
  }

  // Ticking an area visibly ticks every area under it, which it covers: those boxes show ticked
  // and cannot be unticked alone, and only the ticked area itself is sent. Unticking it gives
  // them back their own state. The list comes parent first (data-parent names the parent).
  function coverChildren(form, name) {
    const boxes = [...form.querySelectorAll(`input[name="${name}"]`)];
    const byId = Object.fromEntries(boxes.map((b) => [b.value, b]));
    const parentOf = (id) => (byId[id] ? byId[id].dataset.parent : "");
    function coveredBy(id) {
      for (let a = parentOf(id), depth = 0; a && depth < 20; a = parentOf(a), depth += 1) {
        const box = byId[a];
        if (box && box.checked && !box.disabled) return box;
      }
      return null;
    }
    function paint() {
      for (const box of boxes) {
        const covered = Boolean(coveredBy(box.value));
        if (covered) {
          if (!box.disabled) box.dataset.own = box.checked ? "1" : "";
          box.checked = true;
          box.disabled = true;
        } else if (!covered && box.disabled) {
          box.disabled = false;
          box.checked = box.dataset.own === "1";
        }
        const row = box.closest(".check");
        if (row) row.classList.toggle("covered", covered);
      }
    }
    form.addEventListener("change", (event) => {
      if (event.target.name === name) paint();
    });
    paint();
    return paint;
  }

  // Filters whose change should show the result at once (the button stays for keyboards).
  for (const select of document.querySelectorAll("select.autosubmit")) {
    select.addEventListener("change", () => select.form.submit());
  }

  // The phone's menu: the pages and the account fold behind one button (CSS shows the button
  // only on narrow screens; without this script the menu stays open).
  const menu = document.getElementById("site-menu");
  const toggle = document.getElementById("menu-toggle");
  if (menu && toggle) {
    toggle.hidden = false;
    document.documentElement.classList.add("menu-folds");
    toggle.addEventListener("click", () => {
      const open = toggle.getAttribute("aria-expanded") !== "true";
      toggle.setAttribute("aria-expanded", String(open));
      menu.classList.toggle("open", open);
    });
  }

  // A day as people type it, dd/mm/yyyy (d/m/yyyy too), or as links carry it, yyyy-mm-dd: the
  // API's yyyy-mm-dd, or null when it is no day (as the server's day_from_text reads it).
  function dayFromText(text) {
    const s = String(text || "").trim();
    let m = /^(\d{1,2})\/(\d{1,2})\/(\d{4})$/.exec(s);
    let y, mo, d;
    if (m) [d, mo, y] = [Number(m[1]), Number(m[2]), Number(m[3])];
    else if ((m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s))) {
      [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
    } else return null;
    if (y < 2000 || y > 2199 || mo < 1 || mo > 12 || d < 1) return null;
    if (d > new Date(Date.UTC(y, mo, 0)).getUTCDate()) return null; // 31/02 is no day
    return `${y}-${String(mo).padStart(2, "0")}-${String(d).padStart(2, "0")}`;
  }

  // A time of day typed on the 24-hour clock, 19:30 (19h30 and 7:05 too): "HH:MM", or null.
  function clockFromText(text) {
    const m = /^([01]?\d|2[0-3])[:hH.]([0-5]\d)$/.exec(String(text || "").trim());
    return m ? `${m[1].padStart(2, "0")}:${m[2]}` : null;
  }

  // A wide table scrolls inside its own box (a phone's width): a box that scrolls takes the
  // keyboard's focus, so arrow keys scroll it, and is named by its table's heading (WCAG 2.1.1).
  // Watched as rows arrive live and as the window turns.
  function scrollRegions() {
    for (const wrap of document.querySelectorAll(".table-wrap")) {
      const scrolls = wrap.scrollWidth > wrap.clientWidth + 1;
      if (scrolls && !wrap.hasAttribute("tabindex")) {
        const section = wrap.closest("section");
        const named =
          wrap.querySelector("caption") ||
          (section && section.querySelector("h2, h3")) ||
          document.querySelector("h1");
        wrap.tabIndex = 0;
        wrap.setAttribute("role", "region");
        wrap.setAttribute("aria-label", named ? named.textContent.trim() : document.title);
      } else if (!scrolls && wrap.getAttribute("role") === "region") {
        for (const a of ["tabindex", "role", "aria-label"]) wrap.removeAttribute(a);
      }
    }
  }
  if ("ResizeObserver" in window) {
    const watch = new ResizeObserver(scrollRegions);
    for (const wrap of document.querySelectorAll(".table-wrap")) {
      watch.observe(wrap);
      if (wrap.firstElementChild) watch.observe(wrap.firstElementChild);
    }
  }
  scrollRegions();

  return {
    csrf,
    words,
    t,
    api,
    say,
    text,
    time,
    number,
    coverChildren,
    dayFromText,
    clockFromText,
    ApiError,
  };
})();
