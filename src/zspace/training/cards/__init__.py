"""Model cards: a README.md in every run folder, in the Hugging Face model-card convention.

A card is YAML front matter (library_name, tags, datasets, metrics, model-index and a `zspace`
block that marks the card as zspace's) followed by prose: what the model is, the `zspace`
command that makes it, its data and their checksums, training time and hardware, its figures,
how to load it and its limits. Every field is read from the run's own files (config.json,
metrics.jsonl, evaluation.json, the weight files' headers) and, for a stage of `zspace run`,
the study's config.json and stage records above it; nothing is typed by hand.

    write_card("runs/ae")        # runs/ae/README.md; None when a README.md of the user's is there

A README.md that zspace did not write (no `zspace:` block with `card:` in its front matter) is
never overwritten: `write_card` leaves it alone, says so in one line on stderr and returns None.

Each kind's command is rebuilt by a `command_for_run(run, config)` next to the code that trains
that kind, which knows its flags and defaults. Those modules import this package to write their
cards, so each kind's row in `zspace.runs.RUN_KINDS` names its builder as "module:function"
text, imported when a card is written, as it names the loader.

    file_names    the card's file name and format number, evaluation.json, the study's records
    environment   run_environment: the hardware and software a run records in config.json
    facts         reading a run's facts: config, metrics, evaluation, study, data, weights
    command       Command, setting_differences and rebuilding a run's command
    yaml_text     to_yaml: block-style YAML without a YAML library
    front_matter  what the YAML front matter says (tags, datasets, model-index, zspace block)
    markdown      table cells and tables
    sections      the prose sections of a run's card
    study_card    the card of a `zspace run` study folder
    compose       card_text: front matter and sections in order
    writing       write_card and is_zspace_card: never over a user's README.md
"""

from zspace.training.cards.command import Command, setting_differences
from zspace.training.cards.compose import card_text
from zspace.training.cards.environment import run_environment
from zspace.training.cards.file_names import CARD_FILE, EVALUATION_FILE
from zspace.training.cards.writing import is_zspace_card, write_card
from zspace.training.cards.yaml_text import to_yaml

__all__ = [
    "CARD_FILE",
    "EVALUATION_FILE",
    "Command",
    "card_text",
    "is_zspace_card",
    "run_environment",
    "setting_differences",
    "to_yaml",
    "write_card",
]
