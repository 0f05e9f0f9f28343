"""Tests of the records on the topics and how raw messages are parsed."""
