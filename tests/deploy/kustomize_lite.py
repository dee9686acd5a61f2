"""A small kustomize renderer for the features k8s/ uses, for machines without a modern kubectl.

Debian 12 ships no kustomize and only kubectl 1.20, whose kustomize (v2.0) predates `patches:`,
`labels:` and directories in `resources:`. This renders base and overlays the way kustomize v5 does
for exactly what k8s/ uses — resources (files, directories), namespace, labels (with includeTemplates),
images, configMap/secret generators from literals (merge, no hash suffix), strategic-merge patch files
and inline JSON 6902 patches with a target — and refuses anything else, so a new feature in k8s/ can't
be silently mis-rendered. tests/deploy/test_k8s.py proves its output equal to `kubectl kustomize`
wherever kubectl exists.
"""

import base64
import copy
from pathlib import Path
from typing import Any

import yaml

Doc = dict[str, Any]
SUPPORTED = {
    "apiVersion",
    "kind",
    "resources",
    "namespace",
    "labels",
    "images",
    "patches",
    "secretGenerator",
    "configMapGenerator",
    "generatorOptions",
}
CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
    "StorageClass",
}
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
    "envFrom": None,
}
TEMPLATE_PATHS = {
    "Deployment": [["spec", "template"]],
    "StatefulSet": [["spec", "template"]],
    "DaemonSet": [["spec", "template"]],
    "ReplicaSet": [["spec", "template"]],
    "Job": [["spec", "template"]],
    "CronJob": [["spec", "jobTemplate"], ["spec", "jobTemplate", "spec", "template"]],
}


class UnsupportedKustomization(Exception):
    pass


def _load_docs(path: Path) -> list[Doc]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _key(doc: Doc) -> tuple[str, str]:
    return doc["kind"], doc["metadata"]["name"]


def _strategic_merge(base: Any, patch: Any, field: str | None = None) -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for k, v in patch.items():
            out[k] = _strategic_merge(base[k], v, k) if k in base else copy.deepcopy(v)
        return out
    if isinstance(base, list) and isinstance(patch, list) and MERGE_KEYS.get(field or ""):
        key = MERGE_KEYS[field or ""]
        out_list = [copy.deepcopy(x) for x in base]
        for item in patch:
            idx = next((i for i, x in enumerate(out_list) if x.get(key) == item.get(key)), None)
            if idx is None:
                out_list.append(copy.deepcopy(item))
            else:
                out_list[idx] = _strategic_merge(out_list[idx], item)
        return out_list
    return copy.deepcopy(patch)


def _json_patch(doc: Doc, ops: list[dict[str, Any]]) -> None:
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].lstrip("/").split("/")]
        parent: Any = doc
        for p in parts[:-1]:
            parent = parent[int(p)] if isinstance(parent, list) else parent.setdefault(p, {})
        last = parts[-1]
        if op["op"] not in {"add", "replace"}:
            raise UnsupportedKustomization(f"JSON patch op {op['op']}")
        if isinstance(parent, list):
            if last == "-":
                parent.append(op["value"])
            elif op["op"] == "add":
                parent.insert(int(last), op["value"])
            else:
                parent[int(last)] = op["value"]
        else:
            if op["op"] == "replace" and last not in parent:
                raise UnsupportedKustomization(f"replace of missing {op['path']}")
            parent[last] = op["value"]


def _generated(kind: str, gen: dict[str, Any]) -> Doc:
    pairs = dict(item.split("=", 1) for item in gen.get("literals", []))
    if set(gen) - {"name", "literals", "behavior"}:
        raise UnsupportedKustomization(f"{kind} generator fields {sorted(gen)}")
    if kind == "Secret":
        data = {k: base64.b64encode(v.encode()).decode() for k, v in pairs.items()}
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": gen["name"]},
            "type": "Opaque",
            "data": data,
        }
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": gen["name"]}, "data": pairs}


def _set_image(container: Doc, images: list[dict[str, str]]) -> None:
    image = container.get("image", "")
    name, _, tag = image.partition(":") if "@" not in image else (image, "", "")
    for img in images:
        if img["name"] == name:
            container["image"] = f"{img.get('newName', name)}:{img.get('newTag', tag)}".rstrip(":")


def render_kustomization(directory: Path) -> list[Doc]:
    kust = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(kust) - SUPPORTED
    if unknown:
        raise UnsupportedKustomization(f"{directory}: {sorted(unknown)}")
    docs: list[Doc] = []
    for res in kust.get("resources", []):
        path = (directory / res).resolve()
        docs.extend(render_kustomization(path) if path.is_dir() else _load_docs(path))
    options = kust.get("generatorOptions", {})
    for kind, field in (("ConfigMap", "configMapGenerator"), ("Secret", "secretGenerator")):
        for gen in kust.get(field, []):
            if not options.get("disableNameSuffixHash"):
                raise UnsupportedKustomization("generators need disableNameSuffixHash: true")
            new = _generated(kind, gen)
            if gen.get("behavior", "create") == "merge":
                old = next(d for d in docs if _key(d) == _key(new))
                old.setdefault("data", {}).update(new["data"])
            else:
                docs.append(new)
    for patch in kust.get("patches", []):
        if "path" in patch:
            for p in _load_docs(directory / patch["path"]):
                i = next(i for i, d in enumerate(docs) if _key(d) == _key(p))
                docs[i] = _strategic_merge(docs[i], p)
        else:
            target = patch["target"]
            ops = yaml.safe_load(patch["patch"])
            for d in docs:
                if set(target) - {"kind", "name"}:
                    raise UnsupportedKustomization(f"patch target {target}")
                if d["kind"] == target["kind"] and d["metadata"]["name"] == target.get(
                    "name", d["metadata"]["name"]
                ):
                    _json_patch(d, ops)
    for d in docs:
        if "namespace" in kust and d["kind"] not in CLUSTER_SCOPED:
            d["metadata"]["namespace"] = kust["namespace"]
        for label in kust.get("labels", []):
            if label.get("includeSelectors"):
                raise UnsupportedKustomization("labels with includeSelectors")
            d["metadata"].setdefault("labels", {}).update(label["pairs"])
            if label.get("includeTemplates"):
                for path in TEMPLATE_PATHS.get(d["kind"], []):
                    node: Any = d
                    for p in path:
                        node = node[p]
                    node.setdefault("metadata", {}).setdefault("labels", {}).update(label["pairs"])
        for tmpl_path in TEMPLATE_PATHS.get(d["kind"], [])[-1:]:
            node = d
            for p in tmpl_path:
                node = node[p]
            for c in node["spec"].get("containers", []) + node["spec"].get("initContainers", []):
                _set_image(c, kust.get("images", []))
    return docs
