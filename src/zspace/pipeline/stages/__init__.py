"""The stages of `zspace run`, each a function of the stage context that returns a small
JSON-able summary for the report.

Every stage writes into its own folder of the run (`RUN/<stage>/`); figures are referenced by
paths relative to RUN. `zspace.pipeline.runner.study_stages` puts them in order.
"""
