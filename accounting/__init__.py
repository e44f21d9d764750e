"""Pure accounting rules: order events + tenant config → posting commands. No I/O.

Entry point: `accounting.engine.apply(state, event, config) -> Decision`; daily summaries
close with `accounting.summary.close_day`. Mappings are checked against a ledger's tax
rates and accounts by `store.tenant_config.ledger_problems`.
"""
