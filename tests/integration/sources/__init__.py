"""The sources layer against local fake Spotify, Deezer and audio servers, and real files."""
