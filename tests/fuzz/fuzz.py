"""Coverage-guided fuzzing of the parsers in ``fuzz_targets`` with atheris (libFuzzer).

    python tests/fuzz/fuzz.py TARGET|all [CORPUS_DIR] [libFuzzer flags…]
    python tests/fuzz/fuzz.py --list

``all`` fuzzes every target at once (the first byte of an input picks the target): what ``make test``
runs for a few seconds. ``make fuzz`` runs each target on its own for ``FUZZ_SECONDS``, keeping what it
learns in ``.fuzz/``. The corpus directory is seeded with ``fuzz_targets.SEEDS`` first. A finding stops
the run with a non-zero exit and the input saved as ``crash-…`` under ``-artifact_prefix``.
"""

import sys
from collections.abc import Callable
from hashlib import sha1
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).parent))

# Only our packages are instrumented: their branches are the coverage that guides the fuzzer.
with atheris.instrument_imports(include=["p1_ingest", "p1_query", "p1_contracts", "p1_servicekit"]):
    import fuzz_targets

NAMES = sorted(fuzz_targets.TARGETS)


def _all(data: bytes) -> None:
    if data:
        fuzz_targets.TARGETS[NAMES[data[0] % len(NAMES)]](data[1:])


def _seeds(name: str) -> list[bytes]:
    if name != "all":
        return fuzz_targets.SEEDS[name]
    return [bytes([NAMES.index(n)]) + seed for n in NAMES for seed in fuzz_targets.SEEDS[n]]


def _seed(corpus: Path, name: str) -> None:
    corpus.mkdir(parents=True, exist_ok=True)
    for seed in _seeds(name):
        (corpus / f"seed-{sha1(seed, usedforsecurity=False).hexdigest()}").write_bytes(seed)


def _dict_file(corpus: Path) -> Path:
    """fuzz_targets.dictionary() in libFuzzer's format, next to the corpus."""
    path = corpus.with_name(corpus.name + ".dict")
    lines = ['"' + "".join(f"\\x{b:02x}" for b in word) + '"' for word in fuzz_targets.dictionary()]
    path.write_text("\n".join(lines) + "\n")
    return path


def main(argv: list[str]) -> None:
    if argv[1:] == ["--list"]:
        print(" ".join(NAMES))
        return
    name, rest = argv[1], argv[2:]
    target: Callable[[bytes], None] = _all if name == "all" else fuzz_targets.TARGETS[name]
    dirs = [a for a in rest if not a.startswith("-")]
    for corpus in dirs[:1]:
        _seed(Path(corpus), name)
        rest.append(f"-dict={_dict_file(Path(corpus))}")
    atheris.Setup([argv[0], *rest], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
