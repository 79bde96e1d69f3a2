"""A small synchronous client of the console's REST API (what ``outband fleet`` and scripts use).

It speaks to the API as any other client does, over HTTP with httpx2, and knows nothing of the console's
code (the import rule keeps ``client`` below ``console``): answers are the API's JSON, described here by
TypedDicts for the fields callers read.

Signing in, either of:

* an API token (``Authorization: Bearer``), what ``outband fleet login`` saves;
* an account name and password: the client opens a browser-style session, sends its CSRF token on every
  unsafe request, and ends the session when closed (so scripted runs leave no sessions behind).

Every failure is a :class:`ConsoleApiError` carrying the HTTP status and the API's ``detail``; a console that
cannot be reached is status 0.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final, TypedDict, TypeVar, cast

import httpx2

DEFAULT_URL: Final = "http://127.0.0.1:8080"
CSRF_HEADER: Final = "X-CSRF-Token"
PAGE_SIZE: Final = 1000
"""The API's largest page of devices."""
JOB_PAGE_SIZE: Final = 5000
"""The API's largest page of a job's devices."""
POLL_SECONDS: Final = 0.5
FINISHED: Final = frozenset({"succeeded", "failed", "cancelled"})
"""Job states after which nothing changes."""


class ConsoleApiError(Exception):
    """The console refused or failed a request (``status`` 0: it could not be reached at all)."""

    def __init__(self, status: int, detail: Any, *, method: str = "", path: str = "") -> None:
        self.status = status
        self.detail = detail
        self.method = method
        self.path = path
        super().__init__(self.describe())

    def describe(self) -> str:
        detail = self.detail
        if isinstance(detail, dict) and "message" in detail:  # a failed device check
            detail = f"{detail.get('reason')}: {detail['message']}"
        elif isinstance(detail, list):  # request validation errors
            detail = "; ".join(_validation_message(item) for item in detail)
        where = f"{self.method} {self.path}: " if self.method else ""
        return f"{where}{detail}" if self.status == 0 else f"{where}HTTP {self.status}: {detail}"


def _validation_message(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)
    location = ".".join(str(part) for part in item.get("loc", ()) if part != "body")
    return f"{location}: {item.get('msg', item)}" if location else str(item.get("msg", item))


# ---------------------------------------------------------------------------------------------- shapes


class DeviceState(TypedDict):
    reachable: bool | None
    power_state: int | None
    power: str
    amt_version: str | None
    last_error: str | None


class CiraPresence(TypedDict):
    """A CIRA device's tunnel (the parts the SDK reads; the API sends more)."""

    login: str
    online: bool
    connected_since: str | None
    disconnected_at: str | None


class Device(TypedDict):
    id: int
    name: str
    host: str
    transport: str
    cira: CiraPresence | None
    group: str | None
    tags: list[str]
    state: DeviceState


class Token(TypedDict):
    id: int
    name: str
    token: str


class Selection(TypedDict, total=False):
    """Which devices an operation addresses (the union of all that is given)."""

    devices: list[int]
    names: list[str]
    tags: list[str]
    groups: list[str]
    all: bool


class Job(TypedDict):
    id: int
    operation: str
    params: dict[str, Any]
    status: str
    total: int
    counts: dict[str, int]
    """Devices by state: pending, running, succeeded, failed, cancelled."""
    waiting_offline: int
    """Pending devices that are CIRA devices away: the job waits for them to dial in."""
    started_at: str | None
    finished_at: str | None


class JobDevice(TypedDict):
    device_id: int | None
    device_name: str
    status: str
    attempts: int
    result: dict[str, Any] | None
    error: str | None
    reason: str | None
    """Why it failed: unreachable, timeout, auth_refused, refused, ..."""


class Discovery(TypedDict):
    id: int
    network: str
    status: str
    total: int
    probed: int
    error: str | None
    found: list[dict[str, Any]]


# ---------------------------------------------------------------------------------------------- client


class ConsoleApi:
    """``with ConsoleApi(url, token=...) as api: api.devices()``.  Give ``token``, or ``username`` and
    ``password`` (a session opened on first use), or neither (only public calls)."""

    def __init__(self, url: str = DEFAULT_URL, *, token: str | None = None, username: str | None = None,
                 password: str | None = None, timeout: float = 30.0,
                 transport: httpx2.BaseTransport | None = None) -> None:
        if token is not None and username is not None:
            raise ValueError("sign in with a token or with a user name and password, not both")
        if (username is None) != (password is None):
            raise ValueError("a user name needs a password")
        self.url = url.rstrip("/")
        self._http = httpx2.Client(base_url=self.url, timeout=timeout, transport=transport,
                                   headers={"Accept": "application/json"})
        if token is not None:
            self._http.headers["Authorization"] = f"Bearer {token}"
        self._login = (username, password) if username is not None and password is not None else None
        self._session_open = False

    def __enter__(self) -> ConsoleApi:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """End the session this client opened (if any) and its connections."""
        try:
            if self._session_open:
                self._session_open = False
                self._send("POST", "/api/auth/logout")
        except ConsoleApiError:
            pass  # the session ends by itself; nothing to clean up on a console that is gone
        finally:
            self._http.close()

    # ------------------------------------------------------------------------------------------ transport

    def request(self, method: str, path: str, *, json: Any = None, params: Mapping[str, Any] | None = None,
                files: Mapping[str, Any] | None = None, data: Mapping[str, Any] | None = None) -> Any:
        """One call, signed in: the decoded JSON answer (None for 204); :class:`ConsoleApiError` for anything
        else."""
        if self._login is not None and not self._session_open:
            self._open_session(*self._login)
        return self._send(method, path, json=json, params=params, files=files, data=data)

    def _send(self, method: str, path: str, *, json: Any = None, params: Mapping[str, Any] | None = None,
              files: Mapping[str, Any] | None = None, data: Mapping[str, Any] | None = None) -> Any:
        try:
            reply = self._http.request(method, path, json=json, params=_query(params), files=files, data=data)
        except httpx2.TimeoutException:
            raise ConsoleApiError(0, f"{self.url} did not answer in time", method=method, path=path) from None
        except httpx2.TransportError as exc:
            raise ConsoleApiError(0, f"cannot reach the console at {self.url}: {exc}", method=method,
                                  path=path) from None
        if reply.status_code == 204:
            return None
        try:
            body = reply.json()
        except ValueError:
            body = None
        if reply.is_success and body is not None:
            return body
        detail = body.get("detail", body) if isinstance(body, dict) else (body or reply.reason_phrase)
        raise ConsoleApiError(reply.status_code, detail, method=method, path=path)

    def _open_session(self, username: str, password: str) -> None:
        answer = self._send("POST", "/api/auth/login", json={"username": username, "password": password})
        self._http.headers[CSRF_HEADER] = answer["csrf_token"]
        self._session_open = True

    # ------------------------------------------------------------------------------------------ accounts

    def health(self) -> dict[str, Any]:
        return cast(dict[str, Any], self._send("GET", "/api/health"))

    def me(self) -> dict[str, Any]:
        return cast(dict[str, Any], self.request("GET", "/api/auth/me"))

    def create_token(self, name: str, *, expires_in_days: int | None = None) -> Token:
        body: dict[str, Any] = {"name": name}
        if expires_in_days is not None:
            body["expires_in_days"] = expires_in_days
        return cast(Token, self.request("POST", "/api/auth/tokens", json=body))

    def revoke_token(self, token_id: int) -> None:
        self.request("DELETE", f"/api/auth/tokens/{token_id}")

    # ------------------------------------------------------------------------------------------ devices

    def devices(self, *, tag: str | None = None, group: str | None = None, reachable: bool | None = None,
                search: str | None = None, limit: int | None = None) -> Iterator[Device]:
        """Devices matching the filters, in id order, fetched a page at a time."""
        offset = 0
        while True:
            size = PAGE_SIZE if limit is None else min(PAGE_SIZE, limit - offset)
            if size <= 0:
                return
            page = self.request("GET", "/api/devices", params={
                "tag": tag, "group": group, "reachable": reachable, "search": search,
                "limit": size, "offset": offset})
            items = cast(list[Device], page["items"])
            yield from items
            offset += len(items)
            if not items or offset >= page["total"]:
                return

    def add_device(self, spec: Mapping[str, Any], *, check: bool = True) -> Device:
        return cast(Device, self.request("POST", "/api/devices", json=dict(spec), params={"check": check}))

    def import_devices(self, csv_data: bytes, *, username: str | None = None, password: str | None = None,
                       check: bool = False) -> dict[str, Any]:
        form = {key: value for key, value in (("username", username), ("password", password)) if value is not None}
        form["check"] = "true" if check else "false"
        files = {"file": ("devices.csv", csv_data, "text/csv")}
        return cast(dict[str, Any], self.request("POST", "/api/devices/import", files=files, data=form))

    # ------------------------------------------------------------------------------------------ discovery

    def start_discovery(self, network: str, *, http_port: int | None = 16992,
                        tls_port: int | None = 16993) -> Discovery:
        return cast(Discovery, self.request("POST", "/api/discovery", json={
            "network": network, "http_port": http_port, "tls_port": tls_port}))

    def discovery(self, discovery_id: int) -> Discovery:
        return cast(Discovery, self.request("GET", f"/api/discovery/{discovery_id}"))

    def wait_discovery(self, discovery_id: int, on_progress: Callable[[Discovery], None] | None = None,
                       *, poll: float = POLL_SECONDS) -> Discovery:
        return _wait(lambda: self.discovery(discovery_id), on_progress, poll)

    # ------------------------------------------------------------------------------------------ jobs

    def submit(self, operation: str, target: Selection, params: Mapping[str, Any] | None = None) -> Job:
        """Start an operation (``power``, ``boot``, ``inventory``, ...) on the selected devices; the job runs
        in the console."""
        return cast(Job, self.request("POST", f"/api/operations/{operation}", json={
            "target": dict(target), "params": dict(params or {})}))

    def job(self, job_id: int) -> Job:
        detail = self.request("GET", f"/api/jobs/{job_id}", params={"limit": 1})
        detail.pop("devices", None)
        detail.pop("next_after", None)
        return cast(Job, detail)

    def jobs(self, *, limit: int = 50) -> list[Job]:
        """The newest jobs first."""
        return cast(list[Job], self.request("GET", "/api/jobs", params={"limit": limit})["items"])

    def job_devices(self, job_id: int) -> Iterator[JobDevice]:
        """Every device's part in a job (result or error), in the order they were added, a page at a time."""
        after = 0
        while True:
            page = self.request("GET", f"/api/jobs/{job_id}", params={"limit": JOB_PAGE_SIZE, "after": after})
            yield from cast(list[JobDevice], page["devices"])
            if page["next_after"] is None:
                return
            after = page["next_after"]

    def cancel_job(self, job_id: int) -> Job:
        return cast(Job, self.request("POST", f"/api/jobs/{job_id}/cancel"))

    def wait_job(self, job_id: int, on_progress: Callable[[Job], None] | None = None, *,
                 poll: float = POLL_SECONDS) -> Job:
        return _wait(lambda: self.job(job_id), on_progress, poll)


_Polled = TypeVar("_Polled", Job, Discovery)


def _wait(read: Callable[[], _Polled], on_progress: Callable[[_Polled], None] | None, poll: float) -> _Polled:
    while True:
        current = read()
        if on_progress is not None:
            on_progress(current)
        if current["status"] in FINISHED:
            return current
        time.sleep(poll)


def _query(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Query parameters without the unset ones, booleans as the API reads them."""
    if params is None:
        return None
    return {key: (("true" if value else "false") if isinstance(value, bool) else value)
            for key, value in params.items() if value is not None}


def selection(names: Sequence[str] = (), ids: Sequence[int] = (), tags: Sequence[str] = (),
              groups: Sequence[str] = (), every: bool = False) -> Selection:
    """A :class:`Selection` with only what is given."""
    chosen: Selection = {}
    if names:
        chosen["names"] = list(names)
    if ids:
        chosen["devices"] = list(ids)
    if tags:
        chosen["tags"] = list(tags)
    if groups:
        chosen["groups"] = list(groups)
    if every:
        chosen["all"] = True
    return chosen

