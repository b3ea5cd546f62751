"""The demo's people at work on incidents, over the real HTTP API with their own log-ins.

The center's operator dispatches every new incident to its owner agency (and, for the health department, to its
handler); the handler takes each incident assigned to them one step further per round — accepts it, works through
its SOP checklist, resolves it with a note —; the operator closes what is resolved. So an incident raised by a
rule on simulated data goes from assignment to closure while one watches, with its whole trail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import httpx

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


class DeskError(RuntimeError):
    """A person of the demo could not log in or act."""


@dataclass
class Person:
    """One logged-in user: a cookie jar and the CSRF token their pages carry."""

    base_url: str
    username: str
    password: str
    client: httpx.Client = field(init=False)
    token: str = ""

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.base_url, timeout=30, follow_redirects=True)

    def log_in(self) -> None:
        page = self.client.get("/login")
        found = TOKEN.search(page.text)
        if found is None:
            raise DeskError(f"{self.username}: no log-in form")
        answer = self.client.post(
            "/login", data={"username": self.username, "password": self.password, "csrf_token": found[1]}
        )
        found = TOKEN.search(answer.text)
        if "/login" in str(answer.url) or found is None:
            raise DeskError(f"{self.username}: log-in refused")
        self.token = found[1]

    def get(self, path: str, **params: Any) -> Any:
        if not self.token:
            self.log_in()
        answer = self.client.get(path, params=params)
        if answer.status_code == 401:
            self.log_in()
            answer = self.client.get(path, params=params)
        answer.raise_for_status()
        return answer.json()

    def post(self, path: str, body: dict[str, Any]) -> Any:
        if not self.token:
            self.log_in()
        answer = self.client.post(path, json=body, headers={"X-CSRF-Token": self.token})
        if answer.status_code in (401, 403):
            self.log_in()
            answer = self.client.post(path, json=body, headers={"X-CSRF-Token": self.token})
        answer.raise_for_status()
        return answer.json()

    def close(self) -> None:
        self.client.close()


@dataclass
class Desk:
    """The operator and one agency's handler, each acting once per round."""

    operator: Person
    handler: Person
    handler_agency: str
    done: list[str] = field(default_factory=list)

    def round(self) -> list[str]:
        """One step on every incident that waits for someone; what was done, in words."""
        said: list[str] = []
        for item in self.operator.get("/api/v1/incidents", status="new")["items"]:
            assignees = [self.handler.username] if item["agency"] == self.handler_agency else []
            self.operator.post(
                f"/api/v1/incidents/{item['id']}/assign", {"agency": item["agency"], "assignees": assignees}
            )
            said.append(f"#{item['id']} assigned to {item['agency']} {' '.join(assignees)}".rstrip())
        for item in self.handler.get("/api/v1/incidents", assigned_to_me="true", status=["assigned", "in_progress"])[
            "items"
        ]:
            said.append(self._step(item["id"]))
        for item in self.operator.get("/api/v1/incidents", status="resolved")["items"]:
            self.operator.post(f"/api/v1/incidents/{item['id']}/status", {"status": "closed", "reason": ""})
            said.append(f"#{item['id']} closed")
            self.done.append(str(item["id"]))
        return said

    def _step(self, incident_id: int) -> str:
        incident = self.handler.get(f"/api/v1/incidents/{incident_id}")
        path = f"/api/v1/incidents/{incident_id}"
        if incident["status"] == "assigned":
            self.handler.post(f"{path}/comments", {"body": "Đã tiếp nhận, đang cử người kiểm tra tại chỗ."})
            self.handler.post(f"{path}/status", {"status": "in_progress", "reason": ""})
            return f"#{incident_id} started"
        waiting = [task for task in incident["tasks"] if not task["done"]]
        if waiting:
            self.handler.post(f"{path}/tasks/{waiting[0]['id']}", {"done": True})
            return f"#{incident_id} step {waiting[0]['position']} done"
        self.handler.post(
            f"{path}/status",
            {"status": "resolved", "reason": "Đã xử lý xong theo quy trình; số liệu đã trở lại bình thường."},
        )
        return f"#{incident_id} resolved"

    def close(self) -> None:
        self.operator.close()
        self.handler.close()
