"""p1_contracts: the models generated from openapi.yaml, and the spec itself as package data."""

from importlib.resources import files


def openapi_text() -> str:
    """The canonical openapi.yaml, shipped inside the package so that images need no repo checkout."""
    return files(__package__).joinpath("openapi.yaml").read_text(encoding="utf-8")
