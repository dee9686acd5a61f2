"""Read tokens: who may see which devices. A device outside the token's scope is answered exactly as an
unknown device (404 with the same body), so a token cannot probe which device ids exist."""

from dataclasses import dataclass

from p1_servicekit.errors import NotFound, Unauthorized
from p1_servicekit.tokens import ALL_DEVICES, TokenTable, bearer_token


@dataclass(frozen=True, slots=True)
class Reader:
    scope: frozenset[str]

    @property
    def sees_all(self) -> bool:
        return ALL_DEVICES in self.scope

    def may_see(self, device_id: str) -> bool:
        return self.sees_all or device_id in self.scope


def authenticate(table: TokenTable, authorization: str | None) -> Reader:
    token = bearer_token(authorization)
    scope = None if token is None else table.scope_of(token)
    if scope is None:
        raise Unauthorized()
    return Reader(scope)


def unknown_device(device_id: str) -> NotFound:
    return NotFound(f"No device '{device_id}'.")


def require_device(reader: Reader, device_id: str) -> None:
    """Out of scope → the very 404 an unknown device gets (checked again against the database later)."""
    if not reader.may_see(device_id):
        raise unknown_device(device_id)
