"""The files a model card is written to and read from, and the card's format number."""

CARD_FILE = "README.md"
CARD_FORMAT = 1  # the `card:` number in the front matter's zspace block
EVALUATION_FILE = "evaluation.json"  # `zspace evaluate RUN --json RUN/evaluation.json`
# Where `zspace run` keeps its stage records (zspace.pipeline.cache.RECORDS_FOLDER).
STUDY_RECORDS = "stages"
