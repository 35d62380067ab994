-- PostgreSQL's own pgbench running the store's append transaction: one call of ds_append (one 100-byte row, no
-- producer, no Stream-Seq), committed on its own, as PostgresStreamStore sends it. See README.md.
-- -D shared=1: every client appends to bench-1; otherwise client i appends to bench-(i+1) (at most 64 clients).
\set n (:client_id % 64) * (1 - :shared) + 1
SELECT written FROM ds_append('bench-' || :n, 'application/octet-stream', NULL, NULL, NULL, NULL, false, 0, -1, 100,
    '{0}', '{100}', '{0}', '{100}', ARRAY[decode(repeat('78', 100), 'hex')]);
