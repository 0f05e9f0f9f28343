"""Faust agents, one module per consumed topic; discovered by ``streams.app``."""
