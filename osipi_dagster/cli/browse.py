"""`osipi browse`: PI point searches and the AF tree, each item marked with whether the connection would pick it up."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from osipi_dagster.cli.check import wildcard
from osipi_dagster.lib.piwebapi import PIWebAPIClient, PIWebAPIError
from osipi_dagster.lib.piwebapi.models import DataServer
from osipi_dagster.lib.settings import Settings

SEARCH_PAGE = 1000  # PI's maximum maxCount for points/search
CHILD_PAGE = 1000


def selected_servers(client: PIWebAPIClient, settings: Settings) -> list[DataServer]:
    servers = client.data_servers()
    wanted = {w.lower().lstrip("\\") for w in settings.data_servers}
    if not wanted:
        return servers
    return [s for s in servers if s.name.lower() in wanted or s.path.lower().lstrip("\\") in wanted]


def search_tags(client: PIWebAPIClient, settings: Settings, query: str, limit: int) -> list[dict[str, Any]]:
    """Points matching the PI point query on the connection's data servers, with `selected` = the tag filter picks it."""
    pick = wildcard(settings.tag_filter)
    rows: list[dict[str, Any]] = []
    for server in selected_servers(client, settings):
        params = [("dataServerWebId", server.web_id), ("query", query)]
        for page in client.iter_collection("points/search", params, page_size=min(limit, SEARCH_PAGE)):
            for p in page:
                rows.append(
                    {
                        "server": server.name,
                        "name": p.get("Name"),
                        "point_type": p.get("PointType"),
                        "units": p.get("EngineeringUnits") or None,
                        "descriptor": p.get("Descriptor") or None,
                        "selected": bool(pick.match(p.get("Name") or "")),
                        "path": p.get("Path"),
                        "web_id": p.get("WebId"),
                    }
                )
                if len(rows) >= limit:
                    return rows
    return rows


@dataclass
class Node:
    """An AF database or element, with its children (to the depth asked) and, for the start node, attributes."""

    kind: str
    name: str
    path: str
    web_id: str
    selected: bool
    template: str | None = None
    description: str | None = None
    has_children: bool = False
    child_count: int | None = None
    children: list[Node] = field(default_factory=list)
    attributes: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k not in ("children", "attributes")}
        out["children"] = [c.as_dict() for c in self.children]
        if self.attributes:
            out["attributes"] = self.attributes
        return out


class AFBrowser:
    """Walks databases → elements → children, paging every collection (a 1,200-child element takes two pages)."""

    def __init__(self, client: PIWebAPIClient, settings: Settings) -> None:
        self.client = client
        self.selected_dbs = {d.lower() for d in settings.af_databases}

    def _db_selected(self, path: str) -> bool:
        if not self.selected_dbs:
            return True
        db = "\\".join(path.lower().split("\\")[:4])  # \\server\db
        return db in self.selected_dbs

    def _element(self, body: dict[str, Any]) -> Node:
        return Node(
            "element", body.get("Name", ""), body.get("Path", ""), body["WebId"],
            self._db_selected(body.get("Path", "")), body.get("TemplateName") or None,
            body.get("Description") or None, bool(body.get("HasChildren")),
        )  # fmt: skip

    def _children(self, node: Node, depth: int) -> None:
        if depth <= 0 or (node.kind == "element" and not node.has_children):
            return
        path = f"{'assetdatabases' if node.kind == 'database' else 'elements'}/{node.web_id}/elements"
        node.children = [
            self._element(e) for page in self.client.iter_collection(path, page_size=CHILD_PAGE) for e in page
        ]
        node.child_count = len(node.children)
        for child in node.children:
            self._children(child, depth - 1)

    def databases(self) -> list[Node]:
        nodes = []
        for server in self.client.asset_servers():
            for db in self.client.asset_databases(server):
                nodes.append(Node("database", db.name, db.path, db.web_id, self._db_selected(db.path),
                                  description=db.description or None, has_children=True))  # fmt: skip
        return nodes

    def walk(self, path: str | None, depth: int) -> list[Node]:
        """The databases (no path), or the database or element at `path`, with children to `depth` levels."""
        if not path:
            nodes = self.databases()
            for node in nodes:
                self._children(node, depth)
            return nodes
        parts = [p for p in path.strip().lstrip("\\").split("\\") if p]
        if len(parts) < 2:
            raise PIWebAPIError(f"{path!r} is no AF path: use \\\\AFSERVER\\Database[\\Element…]")
        full = "\\\\" + "\\".join(parts)
        if len(parts) == 2:
            db = self.client.asset_database(full)
            node = Node("database", db.name, db.path, db.web_id, self._db_selected(db.path),
                        description=db.description or None, has_children=True)  # fmt: skip
        else:
            node = self._element(self.client.get("elements", [("path", full)]))
            node.attributes = [
                {"name": a.get("Name"), "type": a.get("Type"), "data_reference": a.get("DataReferencePlugIn") or None,
                 "config": a.get("ConfigString") or None}
                for page in self.client.iter_collection(f"elements/{node.web_id}/attributes", page_size=CHILD_PAGE)
                for a in page
            ]  # fmt: skip
        self._children(node, depth)
        return [node]


def flatten(nodes: list[Node], indent: int = 0) -> list[list[Any]]:
    """Tree rows for the terminal: indented name, kind, template, children, selected."""
    rows: list[list[Any]] = []
    for n in nodes:
        kids = n.child_count if n.child_count is not None else ("yes" if n.has_children else "")
        rows.append(["  " * indent + n.name, n.kind, n.template, kids, "yes" if n.selected else "no"])
        rows += flatten(n.children, indent + 1)
    return rows


__all__ = ["AFBrowser", "Node", "flatten", "search_tags", "selected_servers"]
