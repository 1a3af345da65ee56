"""Police crime batches in the MoJ 13-column format: parse, store, match per batch, report."""
