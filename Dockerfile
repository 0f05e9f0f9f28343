# The worker and query-node image: the project and its pinned dependencies on Python 3.11.
#
# The whole build context is copied (what is left out is listed in .dockerignore), so a new
# module or package is in the image without editing this file; tests/unit/test_image.py checks
# that every entry point imports from exactly the files this copies.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY . .
# Editable, so the package stays in /app: relative settings (run/, models/) resolve there as
# they do in a checkout. PYTHONPATH makes every package importable whatever setuptools found.
ENV PYTHONPATH=/app
RUN pip install -c constraints.txt -e .
# The default model's weights: the musicnn wheel, pinned by version and sha256, without its
# dependencies (they pin an old NumPy); nothing is fetched when the model loads.
RUN pip install --no-deps --require-hashes -r config/musicnn-weights.txt

# The convnet weights are fetched from the upstream repository and checked against sha256.
ENV SPOTREC_MODEL_WEIGHTS_DIR=/app/models/choi2017
RUN spotrec weights fetch

# The run folder (snapshot cache, logs) and the worker's data folder (Faust's local state) are
# the only places the service writes; they belong to its own unprivileged user.
ENV SPOTREC_RUN_DIR=/app/run SPOTREC_WORKER_DATA_DIR=/app/data \
    SPOTREC_INDEX_CACHE_DIR=/app/run/snapshots HOME=/app/run
RUN useradd --system --uid 10001 --no-create-home --home-dir /app/run spotrec \
    && mkdir -p /app/run/snapshots /app/data \
    && chown -R spotrec:spotrec /app/run /app/data
USER spotrec
CMD ["spotrec", "--help"]
