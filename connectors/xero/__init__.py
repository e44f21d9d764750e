"""connectors/xero."""
