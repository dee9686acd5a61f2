"""How tests change a file a running service watches (a token file), the ways it changes in the field:
an editor renaming a new file over it or truncating and writing it in place, and a Kubernetes Secret
volume swapping its ``..data`` symlink. Imported only by tests."""

import itertools
import os
import shutil
from pathlib import Path


def write_by_rename(path: Path, text: str) -> None:
    """As most editors and ``install`` do: a new file, renamed over the old one (a new inode)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_in_place(path: Path, text: str) -> None:
    """As ``echo … > file`` does: the same inode, truncated then written."""
    with path.open("w") as f:
        f.write(text)


class SecretVolume:
    """A directory laid out as the kubelet lays out a Secret volume: ``KEY -> ..data/KEY``, ``..data ->
    ..<timestamp>``; an update writes a new timestamped directory and renames a new ``..data`` symlink
    over the old one (atomic), then removes the old directory."""

    def __init__(self, root: Path, files: dict[str, str]) -> None:
        self.root = root
        self._versions = itertools.count(1)
        self._current: Path | None = None
        root.mkdir(parents=True, exist_ok=True)
        self.update(files)
        for name in files:
            (root / name).symlink_to(Path("..data") / name)

    def path(self, name: str) -> Path:
        """What a pod mounts and a service is pointed at: the key's symlink."""
        return self.root / name

    def update(self, files: dict[str, str]) -> None:
        version = self.root / f"..2026_01_01_00_00_00.{next(self._versions):06d}"
        version.mkdir()
        for name, text in files.items():
            (version / name).write_text(text)
        tmp_link = self.root / "..data_tmp"
        tmp_link.symlink_to(version.name)
        os.replace(tmp_link, self.root / "..data")
        if self._current is not None:
            shutil.rmtree(self._current)
        self._current = version
