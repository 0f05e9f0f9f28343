"""How the Faust worker is wired: the app, its topics and its services."""
