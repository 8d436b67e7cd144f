-- Runners no longer reach the database: the api hands a runner the connectors of the
-- jobs it holds, over NATS. Their role keeps existing (other databases of the same
-- server may still name it) but can neither sign in nor read anything here.

REVOKE ALL ON ALL TABLES IN SCHEMA public FROM plakar_runner;
REVOKE USAGE ON SCHEMA public FROM plakar_runner;
ALTER ROLE plakar_runner NOLOGIN PASSWORD NULL;
