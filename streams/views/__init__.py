"""Web views served by the worker (Faust's aiohttp server). Each module registers its own pages."""
