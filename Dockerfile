# The platform image: the app (default command) or, with another command, voice_service or the job runner.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    REFLEX_USE_NPM=1 \
    REFLEX_TELEMETRY_ENABLED=false \
    VIRTUAL_ENV=/srv/.venv \
    PATH=/srv/.venv/bin:$PATH

WORKDIR /srv
RUN python -m venv /srv/.venv
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY . .
# Build the frontend into the image (node_modules and the production bundle). Nothing connects to a database
# here: DATABASE_URL and SECRET_KEY are placeholders so no secret is generated into the image.
RUN DATABASE_URL=postgresql://build:build@127.0.0.1:1/build SECRET_KEY=image-build-placeholder \
    reflex export --frontend-only --no-zip \
 && rm -rf data

RUN useradd --create-home --uid 10001 platform && mkdir -p /srv/data && chown -R platform /srv
USER platform
EXPOSE 3000 8081

# Required at run time: DATABASE_URL (external PostgreSQL) and SECRET_KEY (the same on every replica).
#   app:            docker run -p 3000:3000 -e DATABASE_URL=... -e SECRET_KEY=... IMAGE
#   migrations:     docker run -e DATABASE_URL=... -e SECRET_KEY=... IMAGE reflex db migrate
#   voice_service:  docker run -p 8081:8081 -e ... IMAGE python -m voice_service --port 8081
#   job runner:     docker run -e ... -e RUN_JOBS_IN_APP=false IMAGE python -m app.jobs
CMD ["reflex", "run", "--env", "prod", "--frontend-port", "3000", "--backend-port", "3000"]
