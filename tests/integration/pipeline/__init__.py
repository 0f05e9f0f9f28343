"""End-to-end tests of the pipeline on the real servers, with fake Spotify and Deezer APIs."""
