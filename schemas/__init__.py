"""What travels on the topics: versioned, typed records."""
