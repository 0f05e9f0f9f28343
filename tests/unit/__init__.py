"""Tests of the local server launchers and the settings."""
