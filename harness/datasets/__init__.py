"""Data-set plumbing every task shares: where records come from (embedded twin, local release files, the hub) and the readers of release formats."""
