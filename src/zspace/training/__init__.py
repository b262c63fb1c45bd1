"""Training procedures. `loop` holds what every procedure shares: batches, schedule, resume."""
