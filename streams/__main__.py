"""``python -m streams worker`` runs the Faust worker (the same as ``spotrec worker``)."""

from streams.app import app

app.main()
