#!/usr/bin/env bash
# Installs (where missing) and starts Debian's PostgreSQL, creates a test role with a fresh random password,
# and prints an admin connection string for the job-store tests (DISTTRAIN_TEST_POSTGRES). Sourced by .ci/run.
set -euo pipefail
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql >/dev/null
fi
version=$(ls /etc/postgresql | sort -n | tail -1)
if [ -z "$(ls /etc/postgresql/"$version" 2>/dev/null)" ]; then pg_createcluster "$version" main >/dev/null; fi
pg_ctlcluster "$version" main start >/dev/null 2>&1 || pg_ctlcluster "$version" main status >/dev/null
password=$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 \
  -c "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'disttrain_test') THEN CREATE ROLE disttrain_test LOGIN CREATEDB; END IF; END \$\$;" \
  -c "ALTER ROLE disttrain_test PASSWORD '$password';" >/dev/null
echo "Host=127.0.0.1;Port=5432;Username=disttrain_test;Password=$password;Database=postgres"
