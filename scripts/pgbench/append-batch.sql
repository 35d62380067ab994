-- Batched commits across streams, at the database: one statement making :k appends to k different streams (client i
-- uses bench-(i*k+1) .. bench-(i*k+k), so at most 64/k clients), all sharing one commit. Appends/s = tps * k.
\set b (:client_id * :k) % 64 + 1
SELECT count(*) FILTER (WHERE r.written) FROM generate_series(0, :k - 1) g,
    LATERAL ds_append('bench-' || (:b + g), 'application/octet-stream', NULL, NULL, NULL, NULL, false, 0, -1, 100,
        '{0}', '{100}', '{0}', '{100}', ARRAY[decode(repeat('78', 100), 'hex')]) r;
