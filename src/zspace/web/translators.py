"""Translator runs as restyle methods: finding them beside the served run, choosing one for a
pair of digits, and translating an upload with it.

`/api/restyle?method=NAME` redraws an upload as other digits in one of two ways:
  - `restyle` (the default): invert the served generator and redraw its noise with another
    label (service.py, restyle.py), in the restyle worker;
  - a translator method (regular, cycle, paired, shift): a translator run
    (zspace.sampling.translator) moves the upload's autoencoder code to the other digit. Two
    small MLP passes around the translator's own autoencoder: cheap enough for the quick lane.

Translators come from the folders `translator_folders` searches, loaded once when the app is
built (about 35 ms a run on one core, so 30 runs take about a second). For a (source, target)
pair a method's per-pair run for that pair wins over its all-pairs run. Translator runs of the
restyle method are not loaded: each names a generator to invert, which is what `restyle` does
with the served run. A folder that looks like a translator run but does not load is skipped
with one line on stderr, so one damaged run never stops a server.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from zspace.errors import ZspaceError
from zspace.runs import CONFIG_FILE, STUDY, TRANSLATOR, RunDir, folder_owner
from zspace.sampling.translator import Translator, load_translator, read_translator_config

RESTYLE_METHOD = "restyle"  # the served generator's own restyle: today's default
# A `zspace run` study's translation stage folder (zspace.pipeline's TRANSLATION_STAGE; the
# web layer sits below the pipeline and cannot import it).
STUDY_TRANSLATION_FOLDER = "translation"
# How far below a searched folder translator runs may sit: a study's `pair-4-9/cycle`.
SEARCH_DEPTH = 2


class NoTranslator(ZspaceError):
    """No translator of the method asked for turns the upload's digit into the one asked for
    (answered with 404: the request is well formed, the translator is not there)."""


@dataclass(frozen=True)
class ServedTranslator:
    """A loaded translator run and the name it goes by in answers (a folder path relative to
    the searched folder's parent: `translation/pair-4-9/cycle`, never an absolute path)."""

    name: str
    translator: Translator

    @property
    def method(self) -> str:
        return self.translator.method

    @property
    def all_pairs(self) -> bool:
        return bool(self.translator.config.all_pairs)

    def turns(self, source: int, target: int) -> bool:
        """Whether this run turns a `source` digit into a `target` one."""
        if source == target or target not in self.translator.targets:
            return False
        return self.all_pairs or self.translator.default_source(target) == source

    def directions(self) -> list[str]:
        """'4 -> 9' for each direction it translates; 'any pair' for an all-pairs run."""
        if self.all_pairs:
            return ["any pair"]
        return [f"{self.translator.default_source(t)} -> {t}" for t in self.translator.targets]

    def info(self) -> dict:
        """What /api/info lists: method, scope (pair or all), pair, targets and run folder."""
        config = self.translator.config
        return {
            "method": self.method,
            "scope": "all" if self.all_pairs else "pair",
            "pair": None if self.all_pairs else [config.source, config.target],
            "targets": list(self.translator.targets),
            "run": self.name,
        }


class TranslatorSet:
    """The translator runs a server offers, by method."""

    def __init__(self, served: list[ServedTranslator] | None = None):
        # Per-pair runs before all-pairs ones, then by name: `choose` takes the first match.
        self.served = sorted(served or [], key=lambda s: (s.all_pairs, s.name))

    def __len__(self) -> int:
        return len(self.served)

    @property
    def methods(self) -> list[str]:
        """The translator methods offered, sorted."""
        return sorted({s.method for s in self.served})

    def info(self) -> list[dict]:
        return [s.info() for s in self.served]

    def choose(self, method: str, source: int, target: int) -> ServedTranslator | None:
        """The `method` run for source -> target: the pair's own run, else an all-pairs one."""
        return next(
            (s for s in self.served if s.method == method and s.turns(source, target)), None
        )

    def coverage(self, method: str) -> str:
        """'4 -> 9, 9 -> 4': what the `method` runs translate (for error messages)."""
        directions = [d for s in self.served if s.method == method for d in s.directions()]
        return ", ".join(dict.fromkeys(directions))

    @torch.no_grad()
    def translate(
        self, image: torch.Tensor, method: str, source: int, digits: list[int] | None
    ) -> dict:
        """uint8 (28, 28) upload of digit `source` -> the same writer's `digits` by `method`.

        `digits` None asks for all ten: every digit the method reaches (the others are listed
        as unreachable). The upload's own digit is its autoencoder reconstruction, what the
        translators start from. NoTranslator when the method reaches no digit asked for but
        the upload's own. Returns digits, images (float (len(digits), 1, 28, 28)), the run
        used for each (None for the upload's own digit), unreachable digits, and the
        reconstruction (float (1, 1, 28, 28)).
        """
        of_method = [served for served in self.served if served.method == method]
        if not of_method:
            raise NoTranslator(f"no {method} translator is loaded")
        wanted = list(range(10)) if digits is None else digits
        others = [digit for digit in wanted if digit != source]
        chosen = {digit: self.choose(method, source, digit) for digit in others}
        if others and not any(chosen.values()):
            asked = "another digit" if digits is None else f"a {others[0]}"
            raise NoTranslator(
                f"no {method} translator here turns a {source} into {asked} "
                f"(the {method} runs here translate {self.coverage(method)})"
            )
        runs = list(dict.fromkeys(run for run in chosen.values() if run is not None))
        runs = runs or of_method[:1]  # the upload's own digit alone: any run's autoencoder
        images, codes = {}, {}
        for run in runs:
            translator = run.translator
            codes[run.name] = translator.encode(image.reshape(1, 28, 28))  # (1, latent_dim)
            targets = [digit for digit in others if chosen[digit] is run]
            if targets:
                translated = [
                    translator.translate_codes(codes[run.name], t, source) for t in targets
                ]
                images.update(zip(targets, translator.decode(torch.cat(translated))))
        reconstruction = runs[0].translator.decode(codes[runs[0].name])
        images[source] = reconstruction[0]
        reached = [digit for digit in wanted if digit in images]
        return {
            "digits": reached,
            "images": torch.stack([images[digit] for digit in reached]),
            "translators": [None if d == source else chosen[d].name for d in reached],
            "unreachable": [digit for digit in others if chosen[digit] is None],
            "reconstruction": reconstruction,
        }


def find_translators(
    run_dir: str | Path | None,
    translators_dir: str | Path | None = None,
    device: str = "cpu",
) -> TranslatorSet:
    """The translator runs a server offers (see `search_roots`), loaded on `device`; a damaged
    one is skipped with a line on stderr."""
    served = []
    for root in search_roots(run_dir, translators_dir):
        for folder in translator_folders(root):
            name = folder.relative_to(root.parent).as_posix()
            translator = _load_or_warn(folder, name, device)
            if translator is not None:
                _warm_up(translator)
                served.append(ServedTranslator(name, translator))
    return TranslatorSet(served)


@torch.no_grad()
def _warm_up(translator: Translator) -> None:
    """Pay a translator's one-off costs now (its fast CPU decoder is built on first use, about
    15 ms), not on the first user's drawing."""
    codes = translator.encode(torch.zeros(1, 28, 28, dtype=torch.uint8))
    translator.decode(codes)


def search_roots(run_dir: str | Path | None, translators_dir: str | Path | None) -> list[Path]:
    """Where translator runs are looked for: `translators_dir` alone when given; else the
    served run folder and, when that run is a stage of a `zspace run` study, the study's
    translation stage folder."""
    if translators_dir is not None:
        root = Path(translators_dir).resolve()
        if not root.is_dir():
            raise ZspaceError(f"the translators folder {translators_dir} does not exist")
        return [root]
    if run_dir is None:
        return []
    run = Path(run_dir).resolve()
    roots = [run]
    if folder_owner(run.parent) == STUDY and (run.parent / STUDY_TRANSLATION_FOLDER).is_dir():
        roots.append(run.parent / STUDY_TRANSLATION_FOLDER)
    return roots


def translator_folders(root: Path, depth: int = SEARCH_DEPTH) -> Iterator[Path]:
    """Folders at most `depth` levels below `root` (itself included) that hold, or once held,
    a translator run: their config.json or zspace's folder marker says so, or their
    config.json is unreadable (a damaged run of unknown kind, reported by the loader)."""
    owner = folder_owner(root)
    if owner == TRANSLATOR or (owner is None and (root / CONFIG_FILE).is_file()):
        yield root
        return
    if depth == 0:
        return
    try:
        children = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return
    for child in children:
        yield from translator_folders(child, depth - 1)


def _load_or_warn(folder: Path, name: str, device: str) -> Translator | None:
    """The translator run in `folder`; None for a restyle-method run (see the module
    docstring) and, with one line on stderr, for one that does not load."""
    try:
        config, _ = read_translator_config(RunDir(folder))
        if config.method == RESTYLE_METHOD:
            return None
        return load_translator(folder, device)
    except Exception as error:  # whatever is wrong with one run, the others are served
        reason = " ".join(str(error).split())[:200] or type(error).__name__
        print(f"zspace serve: skipping the translator run {name}: {reason}", file=sys.stderr)
        return None
