"""Coverage-guided fuzzing of the parsers in ``fuzz_targets`` with atheris (libFuzzer).

    python tests/fuzz/fuzz.py TARGET|all [CORPUS_DIR] [libFuzzer flags…]
    python tests/fuzz/fuzz.py --list

``all`` fuzzes every target at once (the first byte of an input picks the target): what ``make test``
runs for a few seconds. ``make fuzz`` runs each target on its own for ``FUZZ_SECONDS``, keeping what it
learns in ``.fuzz/``. The corpus directory is seeded with ``fuzz_targets.SEEDS`` first, and the mutator
gets ``fuzz_targets.dictionary()``. A finding stops the run with a non-zero exit and the input saved as
``crash-…`` under ``-artifact_prefix``.
"""

import sys
from collections.abc import Callable
from hashlib import sha1
from pathlib import Path
from types import ModuleType

sys.path.insert(0, str(Path(__file__).parent))

# Only our packages are instrumented: their branches are the coverage that guides the fuzzer.
INSTRUMENTED = ["p1_ingest", "p1_query", "p1_contracts", "p1_servicekit"]


def _targets(instrument: bool) -> ModuleType:
    if not instrument:
        import fuzz_targets

        return fuzz_targets
    import atheris

    with atheris.instrument_imports(include=INSTRUMENTED):
        import fuzz_targets
    return fuzz_targets


def _dispatch(targets: ModuleType, name: str) -> Callable[[bytes], None]:
    if name != "all":
        return targets.TARGETS[name]  # type: ignore[no-any-return]
    names = sorted(targets.TARGETS)

    def every(data: bytes) -> None:
        if data:
            targets.TARGETS[names[data[0] % len(names)]](data[1:])

    return every


def _seed(targets: ModuleType, corpus: Path, name: str) -> Path:
    """Writes the seeds into the corpus and the dictionary next to it; returns the dictionary's path."""
    names = sorted(targets.TARGETS)
    seeds = (
        targets.SEEDS[name]
        if name != "all"
        else [bytes([names.index(n)]) + seed for n in names for seed in targets.SEEDS[n]]
    )
    corpus.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        (corpus / f"seed-{sha1(seed, usedforsecurity=False).hexdigest()}").write_bytes(seed)
    path = corpus.with_name(corpus.name + ".dict")
    words = targets.dictionary()
    path.write_text("".join('"' + "".join(f"\\x{b:02x}" for b in word) + '"\n' for word in words))
    return path


def main(argv: list[str]) -> None:
    if argv[1:] == ["--list"]:
        print(" ".join(sorted(_targets(instrument=False).TARGETS)))
        return
    import atheris

    name, rest = argv[1], argv[2:]
    targets = _targets(instrument=True)
    for corpus in [a for a in rest if not a.startswith("-")][:1]:
        rest.append(f"-dict={_seed(targets, Path(corpus), name)}")
    atheris.Setup([argv[0], *rest], _dispatch(targets, name))
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
