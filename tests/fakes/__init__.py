"""Local HTTP servers that speak the Spotify Web API and Deezer's API, and a test audio host."""
