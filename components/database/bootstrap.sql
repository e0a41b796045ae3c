-- Langflow's role and database, created when missing; safe to run any number of times.
-- psql variables: role, db, password (set with -v; quoted here by psql, never by a shell).
\set ON_ERROR_STOP on

-- Langflow needs PostgreSQL 12 or later.
SELECT current_setting('server_version_num')::int >= 120000 AS supported \gset
\if :supported
\else
  \echo 'PostgreSQL 12 or later is required'
  SELECT 1/0;
\endif

SELECT format('CREATE ROLE %I LOGIN', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
-- The password follows the Secret, so a rotated password takes effect with the next release.
ALTER ROLE :"role" WITH LOGIN PASSWORD :'password';

SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
GRANT ALL PRIVILEGES ON DATABASE :"db" TO :"role";
