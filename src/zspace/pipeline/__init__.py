"""`zspace run`: the whole study as cached stages, and the report it writes."""
