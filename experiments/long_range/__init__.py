"""The long-range comparison: LRA tasks and associative recall, generated offline."""
