"""Command-line groups of the `ledgerstream` CLI, one module per group (wired in the main CLI)."""
