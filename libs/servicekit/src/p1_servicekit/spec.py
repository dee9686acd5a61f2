"""The contract at run time: a service's part of openapi.yaml, and its routes checked against it."""

import functools
from collections.abc import Iterable, Mapping
from copy import deepcopy
from typing import Any, Final, cast

import yaml
from fastapi import FastAPI
from fastapi.routing import APIRoute

from p1_contracts import openapi_text
from p1_servicekit.routing import PlainRoute

HTTP_METHODS: Final = frozenset({"get", "put", "post", "delete", "patch", "options", "head", "trace"})
# Served by every app but not an operation of the contract: it *is* the contract.
NOT_OPERATIONS: Final = frozenset({"/openapi.json"})

Spec = dict[str, Any]


@functools.cache
def load_spec() -> Mapping[str, Any]:
    return cast(Mapping[str, Any], yaml.safe_load(openapi_text()))


def spec_for_tag(spec: Mapping[str, Any], tag: str) -> Spec:
    """The spec restricted to operations tagged ``tag`` (what one service serves)."""
    out = deepcopy(dict(spec))
    paths: dict[str, Any] = {}
    for path, item in spec.get("paths", {}).items():
        kept = {k: deepcopy(v) for k, v in item.items() if k not in HTTP_METHODS or tag in v.get("tags", ())}
        if any(k in HTTP_METHODS for k in kept):
            paths[path] = kept
    out["paths"] = paths
    used_tags = {
        t
        for item in paths.values()
        for k, op in item.items()
        if k in HTTP_METHODS
        for t in op.get("tags", ())
    }
    out["tags"] = [t for t in spec.get("tags", []) if t["name"] in used_tags]
    return out


def spec_operations(spec: Mapping[str, Any], tag: str) -> dict[tuple[str, str], frozenset[int]]:
    ops: dict[tuple[str, str], frozenset[int]] = {}
    for path, item in spec.get("paths", {}).items():
        for method, op in item.items():
            if method in HTTP_METHODS and tag in op.get("tags", ()):
                ops[(method.upper(), path)] = frozenset(int(s) for s in op.get("responses", {}))
    return ops


def app_operations(
    routes: Iterable[Any], prefix: str = "", extra_statuses: frozenset[int] = frozenset()
) -> dict[tuple[str, str], frozenset[int]]:
    ops: dict[tuple[str, str], frozenset[int]] = {}
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            # FastAPI >= 0.16x keeps included routers as branches rather than copying their routes.
            context = getattr(route, "include_context", None)
            sub_prefix = prefix + str(getattr(context, "prefix", ""))
            sub_statuses = extra_statuses | {int(s) for s in getattr(context, "responses", {})}
            ops.update(app_operations(included.routes, sub_prefix, frozenset(sub_statuses)))
            continue
        if not isinstance(route, APIRoute | PlainRoute) or prefix + route.path in NOT_OPERATIONS:
            continue
        statuses = {int(route.status_code or 200)} | {int(s) for s in route.responses} | extra_statuses
        for method in (route.methods or set()) - {"HEAD"}:
            ops[(method, prefix + route.path)] = frozenset(statuses)
    return ops


def route_mismatches(app: FastAPI, spec: Mapping[str, Any], tag: str) -> list[str]:
    """Differences between the app's routes and the spec's operations of ``tag``, both ways.

    Empty when every operation of the tag is served with exactly the documented status codes and the
    app serves nothing undocumented.
    """
    documented = spec_operations(spec, tag)
    served = app_operations(app.routes)
    problems: list[str] = []
    for key in sorted(documented.keys() - served.keys()):
        problems.append(f"{key[0]} {key[1]}: in the spec (tag {tag}) but not served")
    for key in sorted(served.keys() - documented.keys()):
        problems.append(f"{key[0]} {key[1]}: served but not in the spec under tag {tag}")
    for key in sorted(documented.keys() & served.keys()):
        if documented[key] != served[key]:
            only_spec = sorted(documented[key] - served[key])
            only_app = sorted(served[key] - documented[key])
            problems.append(
                f"{key[0]} {key[1]}: status codes differ; spec only {only_spec}, app only {only_app}"
            )
    return problems
