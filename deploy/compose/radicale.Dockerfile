# Radicale (CalDAV) for the compose demo, from PyPI.
FROM python:3.12-slim
RUN pip install --no-cache-dir 'radicale>=3.2,<4' \
 && useradd --system --uid 10001 radicale && mkdir /data && chown radicale /data
COPY radicale.conf /etc/radicale/config
USER radicale
EXPOSE 5232
CMD ["radicale", "--config", "/etc/radicale/config"]
