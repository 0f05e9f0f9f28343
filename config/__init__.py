"""Typed settings for every entry point; see `config.settings`."""
