# The worker and query-node image: the project and its pinned dependencies on Python 3.11.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY pyproject.toml constraints.txt README.md ./
COPY cli cli
COPY config config
COPY infra infra
COPY stores stores
COPY streams streams
COPY agents agents
COPY api api
COPY schemas schemas
COPY features features
RUN pip install -c constraints.txt .

# The convnet weights are fetched from the upstream repository and checked against sha256.
ENV SPOTREC_MODEL_WEIGHTS_DIR=/app/models/choi2017
RUN spotrec weights fetch

USER nobody
CMD ["spotrec", "--help"]
