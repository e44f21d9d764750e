"""Pure accounting rules: order events + tenant config → posting commands. No I/O.

Entry point: `accounting.engine.apply(state, event, config) -> Decision`; daily summaries
close with `accounting.summary.close_day`; mappings are checked with
`accounting.validation.check_mapping`.
"""
