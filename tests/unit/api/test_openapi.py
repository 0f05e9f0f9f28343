"""The OpenAPI document describes exactly the routes the query node's router holds."""

from __future__ import annotations

import re

import jsonschema_rs
from aiohttp import web

from api.openapi import document
from api.routes import setup_routes

_METHODS = {"get", "post", "put", "patch", "delete"}


def _router_routes() -> set[tuple[str, str]]:
    app = web.Application()
    setup_routes(app)
    found = set()
    for route in app.router.routes():
        if route.method == "HEAD":  # added by aiohttp beside every GET
            continue
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter") or info.get("prefix")
        assert path, f"route {route} has no path"
        found.add((route.method.lower(), path))
    return found


def _documented() -> set[tuple[str, str]]:
    return {
        (method, path)
        for path, item in document()["paths"].items()
        for method in item
        if method in _METHODS
    }


def test_every_route_is_documented_and_nothing_else() -> None:
    routes, documented = _router_routes(), _documented()
    assert routes - documented == set(), "routes missing from api/openapi.py PATHS"
    assert documented - routes == set(), "documented routes the router does not hold"


def test_every_operation_documents_its_path_parameters_and_responses() -> None:
    schemas = document()["components"]["schemas"]
    for path, item in document()["paths"].items():
        names = set(re.findall(r"{(\w+)}", path))
        for method, op in item.items():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == names, (method, path)
            assert op["responses"], (method, path)
            for status, response in op["responses"].items():
                assert response["description"], (method, path, status)
                if int(status) >= 400:
                    # Every error body carries {"error": message}.
                    schema = response["content"]["application/json"]["schema"]
                    name = schema["$ref"].rsplit("/", 1)[1]
                    assert "error" in schemas[name]["required"], (method, path, status)


def test_the_schemas_are_valid_json_schema_and_every_reference_resolves() -> None:
    doc = document()
    assert doc["openapi"].startswith("3.1")
    schemas = doc["components"]["schemas"]
    for name in schemas:
        # Each schema inside the document, so that its references resolve; raises if invalid.
        root = {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}
        jsonschema_rs.Draft202012Validator(root)
    refs = set(re.findall(r'"#/components/schemas/(\w+)"', str(doc).replace("'", '"')))
    assert refs <= set(schemas), refs - set(schemas)
