"""Thin Faust agents: decode, call a pure function or a connector, route the result."""
