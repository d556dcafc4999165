# aqsvit worker image. On a GPU host, PyPI's torch 2.13.0 for Linux is the CUDA build.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY aqsvit ./aqsvit
# not editable: the config ships inside the package (aqsvit/conf), as in the wheel
RUN pip install --no-cache-dir "torch==2.13.0" ".[postgres]"
ENV PYTHONUNBUFFERED=1
ENTRYPOINT ["aqsvit"]
CMD ["search"]
