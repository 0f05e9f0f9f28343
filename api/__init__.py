"""The aiohttp query node."""
