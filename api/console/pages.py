"""What every console page shares: who is logged in, which pages their role sees, rendering."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context

from api.console.i18n import LANG_COOKIE, Words, language_of
from api.deps import ServiceDep, SessionDep
from api.session import SESSION_COOKIE, ConsoleSession, read_session
from controller.auth.access import Permission, has
from controller.core.config import TIMEZONE
from controller.core.models import Role
from controller.service import RadioService
from schedules import AreaTree

LOCAL = ZoneInfo(TIMEZONE)
ALL = frozenset(Role)
PEOPLE = frozenset({Role.admin, Role.officer, Role.commune_staff})


NODE_PAGE = 500  # the API's largest page of nodes
MAP_NODES = 2000  # the most nodes a page draws on a map at once


@dataclass(frozen=True)
class Page:
    key: str
    path: str
    roles: frozenset[Role]


# The navigation, in order; a role sees only its own pages (and is refused the others).
PAGES: list[Page] = [
    Page("home", "/console/", ALL),
    Page("announcements", "/console/announcements", PEOPLE),
    Page("dictionary", "/console/dictionary", PEOPLE),
    Page("playlists", "/console/playlists", PEOPLE),
    Page("calendar", "/console/calendar", PEOPLE | {Role.auditor}),
    Page("groups", "/console/groups", PEOPLE),
    Page("approvals", "/console/approvals", frozenset({Role.admin, Role.officer})),
    Page("bulletin_rules", "/console/bulletin-rules", frozenset({Role.admin, Role.officer})),
    Page("playback", "/console/playback", PEOPLE | {Role.auditor}),
    Page("alerts", "/console/alerts", PEOPLE | {Role.auditor}),
    Page("reports", "/console/reports", ALL),
    Page("live", "/console/live", PEOPLE),  # the page itself also checks the alert right
    Page("map", "/console/map", frozenset({Role.admin, Role.technician, Role.auditor})),
    Page("nodes", "/console/nodes", frozenset({Role.admin, Role.technician, Role.auditor})),
    Page("alarms", "/console/alarms", frozenset({Role.admin, Role.technician, Role.auditor})),
    Page("service_accounts", "/console/service-accounts", frozenset({Role.admin})),
    Page("audit", "/console/audit", frozenset({Role.admin, Role.auditor})),
]
# A page where only some of its readers may act: the others' home describes it as read-only
# (`home.see_<page>` instead of `home.about_<page>`).
ACTS: dict[str, Permission] = {
    "calendar": Permission.schedule,
    "alerts": Permission.alert,
    "alarms": Permission.manage_nodes,
}
BY_KEY = {p.key: p for p in PAGES}


@dataclass(frozen=True)
class AreaChoice:
    """An area as a list shows it: indented by its depth below the person's own area."""

    id: str
    name: str
    kind: str
    parent_id: str | None
    depth: int


class LoginNeeded(Exception):
    """No (valid) session: the handler sends the browser to the login page, then back."""

    def __init__(self, back_to: str) -> None:
        super().__init__(back_to)
        self.back_to = back_to


class PageForbidden(Exception):
    """The role may not see this page: the handler answers with the page that says so."""

    def __init__(self, response: HTMLResponse) -> None:
        super().__init__("forbidden")
        self.response = response


def local(value: datetime | str | None, fmt: str = "%d/%m/%Y %H:%M") -> str:
    """A time from the API (ISO 8601; without an offset it is UTC) as Vietnamese wall-clock."""
    if not value:
        return "—"
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return value
        value = parsed
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(LOCAL).strftime(fmt)


def day_from_text(text: str) -> date | None:
    """A day as people type it, dd/mm/yyyy (d/m/yyyy too), or as links carry it, yyyy-mm-dd;
    None when it is no day. Date fields are text: a browser set to English would show a
    type="date" field as mm/dd/yyyy."""
    text = text.strip()
    try:
        if "/" in text:
            d, m, y = (int(p) for p in text.split("/"))
            day = date(y, m, d)
        else:
            day = date.fromisoformat(text)
    except ValueError:
        return None
    # The years the programme knows (controller.programme.programme FIRST_DAY, LAST_DAY): a
    # day past them is a typing slip, and the day after 31/12/9999 does not exist.
    return day if 2000 <= day.year <= 2199 else None


def day_text(value: date | str | None) -> str:
    """A day (or the API's yyyy-mm-dd) as people write it, dd/mm/yyyy."""
    if isinstance(value, str):
        value = day_from_text(value) if value else None
    return value.strftime("%d/%m/%Y") if value else ""


def duration(ms: int | float) -> str:
    seconds = round(ms / 1000)
    return f"{seconds // 60}:{seconds % 60:02d}"


@pass_context
def num(ctx: Any, value: float | int | None, digits: int | None = None, sign: bool = False) -> str:
    """A number as the page's language writes it: 36,5 in Vietnamese, 36.5 in English;
    `digits` after the separator (else as few as needed); `sign` always shows + or −."""
    if value is None:
        return "—"
    if isinstance(value, int) and digits is None:  # thousands grouped: 10.000 / 10,000
        shown = format(value, ("+" if sign else "") + ",")
        return shown.replace(",", ".") if ctx.get("lang", "vi") == "vi" else shown
    spec = ("+" if sign else "") + (f".{digits}f" if digits is not None else "g")
    shown = format(float(value) if digits is not None else value, spec)
    return shown.replace(".", ",") if ctx.get("lang", "vi") == "vi" else shown


templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
templates.env.filters["local"] = local
templates.env.filters["duration"] = duration
templates.env.filters["num"] = num
templates.env.filters["day"] = day_text


class ApiRefused(Exception):
    """The JSON API said no (4xx): `status` and its `detail`."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


class Console:
    """One request of a logged-in person: their session and words, the JSON API on their
    behalf, and the page renderer."""

    def __init__(self, request: Request, service: RadioService, session: ConsoleSession) -> None:
        self.request = request
        self.service = service
        self.session = session
        self.user = session.user
        self.lang = language_of(request)
        self.t = Words(self.lang)

    async def get(self, path: str, **params: Any) -> Any:
        """Read through the JSON API in-process, with the person's own session: the page sees
        exactly what the API lets them see, checked and recorded by the same code."""
        client = self.request.client
        transport = httpx.ASGITransport(
            app=self.request.app, client=(client.host, client.port) if client else ("", 0)
        )
        query = {k: v for k, v in params.items() if v is not None and v != ""}
        cookie = self.request.cookies.get(SESSION_COOKIE, "")
        async with httpx.AsyncClient(transport=transport, base_url="http://console") as api:
            r = await api.get(path, params=query, headers={"Cookie": f"{SESSION_COOKIE}={cookie}"})
        if r.status_code >= 400:
            try:
                detail = str(r.json().get("detail", ""))
            except ValueError:
                detail = ""
            raise ApiRefused(r.status_code, detail)
        return r.json()

    async def all_nodes(self, **params: Any) -> list[dict[str, Any]]:
        """Every node the person may see (the API's pages, one after the other), for the pages
        that pick from or draw them all: the map and the target pickers."""
        nodes: list[dict[str, Any]] = []
        after: dict[str, str] = {}
        while True:
            page = await self.get("/api/v1/nodes", **params, **after, limit=NODE_PAGE)
            nodes += page["items"]
            if page["next_after"] is None:
                return nodes
            after = {"after": page["next_after"]}

    async def nodes_to_draw(
        self, area_id: str | None = None
    ) -> tuple[list[dict[str, Any]], dict[str, int]]:
        """The nodes of `area_id` (default: all the person sees) for a map, and how many there
        are in each state; no nodes when there are more than MAP_NODES (too many to draw)."""
        counts = (await self.get("/api/v1/nodes", area_id=area_id, limit=1))["counts"]
        if counts["nodes"] > MAP_NODES:
            return [], counts
        return await self.all_nodes(area_id=area_id), counts

    def allow(self, key: str) -> None:
        if not self.can(key):
            raise PageForbidden(self.render("forbidden.html", key, 403))

    def can(self, key: str) -> bool:
        return Role(self.user.role) in BY_KEY[key].roles

    def may(self, permission: Permission) -> bool:
        return has(self.user, permission)

    def about(self, key: str) -> str:
        """What the person can do on a page, as their home page describes it."""
        acts = ACTS.get(key)
        return f"home.see_{key}" if acts is not None and not self.may(acts) else f"home.about_{key}"

    async def areas(self) -> list[AreaChoice]:
        """The areas the person works in, each parent before its children."""
        rows = await self.get("/api/v1/areas")
        tree = AreaTree({a["id"]: a["parent_id"] for a in rows})
        rows.sort(key=lambda a: tuple(reversed(tree.lineage(a["id"]))))
        top = min((len(tree.lineage(a["id"])) for a in rows), default=1)
        return [
            AreaChoice(
                a["id"], a["name"], a["kind"], a["parent_id"], len(tree.lineage(a["id"])) - top
            )
            for a in rows
        ]

    def home_area(self, areas: list[AreaChoice]) -> str | None:
        if self.user.area_id:
            return self.user.area_id
        top = [a for a in areas if a.depth == 0]
        return top[0].id if top else None

    def render(self, template: str, key: str, code: int = 200, **ctx: Any) -> HTMLResponse:
        nav = [p for p in PAGES if Role(self.user.role) in p.roles]
        return render(
            self.request,
            template,
            self.t,
            code,
            user=self.user,
            nav=nav,
            current=key,
            csrf=self.session.csrf,
            about=self.about,
            **ctx,
        )


def render(request: Request, template: str, t: Words, code: int = 200, **ctx: Any) -> HTMLResponse:
    """Render with the words of the chosen language; the switch's choice is kept in a cookie."""
    other = "en" if t.lang == "vi" else "vi"
    switch = request.url.include_query_params(lang=other)
    words = {"t": t, "lang": t.lang, "other_lang": other, "switch_href": f"?{switch.query}"}
    response = templates.TemplateResponse(request, template, words | ctx, status_code=code)
    response.headers["Cache-Control"] = "no-store"
    if request.query_params.get("lang") == t.lang:
        response.set_cookie(LANG_COOKIE, t.lang, max_age=365 * 24 * 3600, samesite="lax")
    return response


def get_console(request: Request, service: ServiceDep, db: SessionDep) -> Console:
    session = read_session(request, service, db)
    if session is None:
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginNeeded(back)
    return Console(request, service, session)


ConsoleDep = Annotated[Console, Depends(get_console)]


def login_url(back_to: str) -> str:
    return f"/console/login?next={quote(back_to, safe='')}"
