# Diffusion Lab: the dashboard on CPU torch, the shipped models and MNIST inside.
#   docker build -t diffusion-lab .
#   docker run --rm -p 8501:8501 diffusion-lab          -> http://localhost:8501
# For a class, compose.yaml runs several of these behind nginx (docs/serving.md).
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    STREAMLIT_SERVER_PORT=8501 \
    DIFFLAB_RUNS_DIR=/data/runs \
    DIFFLAB_APP_DIR=/data/app \
    DIFFLAB_EMBEDDINGS_DIR=/data/embeddings
WORKDIR /app

# CPU torch: the pinned pair of requirements.txt from PyTorch's CPU wheel index (no CUDA
# libraries, a much smaller image); then the rest of requirements.txt, whose torch==X is already
# satisfied by X+cpu
COPY requirements.txt ./
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.14.1 torchvision==0.29.1 \
 && pip install -r requirements.txt

COPY pyproject.toml README.md ./
COPY .streamlit/config.toml .streamlit/config.toml
COPY engine engine
COPY dashboard dashboard
COPY pages pages
COPY cache/models cache/models
COPY cache/datasets cache/datasets
COPY cache/bench cache/bench

# unpack and verify MNIST now (the app never writes under /app), and make the writable folders
ARG DIFFLAB_GIT_COMMIT=unknown
ENV DIFFLAB_GIT_COMMIT=$DIFFLAB_GIT_COMMIT
RUN python -c "from engine.data import load_mnist; load_mnist('train'); load_mnist('test')" \
 && useradd --create-home --uid 10001 difflab \
 && mkdir -p /data/runs /data/app /data/embeddings \
 && chown -R difflab:difflab /data

USER difflab
EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD python -c "import os, urllib.request as u; port = os.environ.get('STREAMLIT_SERVER_PORT', '8501'); \
assert u.urlopen(f'http://127.0.0.1:{port}/_stcore/health', timeout=4).read() == b'ok'"
# binds every interface of the container; the port comes from STREAMLIT_SERVER_PORT
CMD ["python", "-m", "dashboard.serve", "--server.address", "0.0.0.0", \
     "--server.headless", "true", "--browser.gatherUsageStats", "false"]
