--
-- PostgreSQL database dump
--


-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: fixture_v2; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA fixture_v2;


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: ds_append_times; Type: TABLE; Schema: fixture_v2; Owner: -
--

CREATE TABLE fixture_v2.ds_append_times (
    stream_id bigint NOT NULL,
    "position" bigint NOT NULL,
    ticks bigint NOT NULL
);


--
-- Name: ds_data; Type: TABLE; Schema: fixture_v2; Owner: -
--

CREATE TABLE fixture_v2.ds_data (
    stream_id bigint NOT NULL,
    start_pos bigint NOT NULL,
    end_pos bigint NOT NULL,
    msg_start bigint NOT NULL,
    msg_end bigint NOT NULL,
    data bytea NOT NULL
);


--
-- Name: ds_incarnation; Type: SEQUENCE; Schema: fixture_v2; Owner: -
--

CREATE SEQUENCE fixture_v2.ds_incarnation
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: ds_producers; Type: TABLE; Schema: fixture_v2; Owner: -
--

CREATE TABLE fixture_v2.ds_producers (
    stream_id bigint NOT NULL,
    producer_id text NOT NULL,
    epoch bigint NOT NULL,
    last_seq bigint NOT NULL,
    updated_ticks bigint NOT NULL
);


--
-- Name: ds_schema_version; Type: TABLE; Schema: fixture_v2; Owner: -
--

CREATE TABLE fixture_v2.ds_schema_version (
    version integer NOT NULL
);


--
-- Name: ds_streams; Type: TABLE; Schema: fixture_v2; Owner: -
--

CREATE TABLE fixture_v2.ds_streams (
    id bigint NOT NULL,
    name text NOT NULL,
    incarnation bigint NOT NULL,
    state smallint DEFAULT 0 NOT NULL,
    content_type text NOT NULL,
    ttl_seconds bigint,
    expires_ticks bigint,
    created_ticks bigint NOT NULL,
    accessed_ticks bigint NOT NULL,
    tail bigint NOT NULL,
    closed boolean NOT NULL,
    last_stream_seq text,
    source_id bigint,
    base_position bigint NOT NULL,
    ref_count integer DEFAULT 0 NOT NULL,
    req_content_type text NOT NULL,
    req_ttl_seconds bigint,
    req_expires_ticks bigint,
    fork_source text,
    fork_offset bigint,
    fork_sub_offset bigint DEFAULT 0 NOT NULL,
    retained_start bigint DEFAULT 0 NOT NULL,
    last_append_ticks bigint
);


--
-- Name: ds_streams_id_seq; Type: SEQUENCE; Schema: fixture_v2; Owner: -
--

ALTER TABLE fixture_v2.ds_streams ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME fixture_v2.ds_streams_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: ds_subscription_keys; Type: TABLE; Schema: fixture_v2; Owner: -
--

CREATE TABLE fixture_v2.ds_subscription_keys (
    id smallint NOT NULL,
    keys jsonb NOT NULL,
    CONSTRAINT ds_subscription_keys_id_check CHECK ((id = 1))
);


--
-- Name: ds_subscriptions; Type: TABLE; Schema: fixture_v2; Owner: -
--

CREATE TABLE fixture_v2.ds_subscriptions (
    id text NOT NULL,
    version bigint NOT NULL,
    state jsonb NOT NULL,
    lease_expires_ticks bigint,
    next_attempt_ticks bigint
);


--
-- Data for Name: ds_append_times; Type: TABLE DATA; Schema: fixture_v2; Owner: -
--

COPY fixture_v2.ds_append_times (stream_id, "position", ticks) FROM stdin;
15	8	639321144000000000
\.


--
-- Data for Name: ds_data; Type: TABLE DATA; Schema: fixture_v2; Owner: -
--

COPY fixture_v2.ds_data (stream_id, start_pos, end_pos, msg_start, msg_end, data) FROM stdin;
1	0	100	0	100	\\x000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f60616263
1	100	256	100	256	\\x6465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff
2	0	6	0	6	\\x68656c6c6f20
2	6	16	6	16	\\x77c3b6726c6420e29c93
3	0	9	0	9	\\x7b2261223a20317d2c
3	9	23	9	23	\\x7b2262223a205b312c20325d7d2c
3	23	31	23	31	\\x227468726565222c
4	0	4	0	4	\\x646f6e65
4	4	5	4	5	\\x21
5	0	1	0	1	\\x74
6	0	1	0	1	\\x65
7	0	6	0	6	\\x616263646566
8	3	6	3	6	\\x58595a
9	5	7	5	7	\\x2121
10	0	10	0	10	\\x30313233343536373839
11	4	6	4	6	\\x6162
12	0	1	0	1	\\x61
12	1	2	1	2	\\x62
12	2	3	2	3	\\x63
12	3	4	3	4	\\x64
14	0	14	0	14	\\x7772697474656e20616674657220
14	14	33	14	33	\\x746865206c61737420636865636b706f696e74
15	8	12	8	12	\\x63636363
\.


--
-- Data for Name: ds_producers; Type: TABLE DATA; Schema: fixture_v2; Owner: -
--

COPY fixture_v2.ds_producers (stream_id, producer_id, epoch, last_seq, updated_ticks) FROM stdin;
12	p1	0	1	639321128400000000
12	p2	3	0	639321129000000000
12	prod-é✓	1	0	639321129600000000
14	l1	7	0	639321132000000000
\.


--
-- Data for Name: ds_schema_version; Type: TABLE DATA; Schema: fixture_v2; Owner: -
--

COPY fixture_v2.ds_schema_version (version) FROM stdin;
4
\.


--
-- Data for Name: ds_streams; Type: TABLE DATA; Schema: fixture_v2; Owner: -
--

COPY fixture_v2.ds_streams (id, name, incarnation, state, content_type, ttl_seconds, expires_ticks, created_ticks, accessed_ticks, tail, closed, last_stream_seq, source_id, base_position, ref_count, req_content_type, req_ttl_seconds, req_expires_ticks, fork_source, fork_offset, fork_sub_offset, retained_start, last_append_ticks) FROM stdin;
1	bytes	117736424079360001	0	application/octet-stream	\N	\N	639321120600000000	639321120600000000	256	f	\N	\N	0	0	application/octet-stream	\N	\N	\N	\N	0	0	\N
2	text	117736428011520002	0	text/plain	\N	\N	639321121200000000	639321121200000000	16	f	0001	\N	0	0	text/plain	\N	\N	\N	\N	0	0	\N
15	retained	117736538112000015	0	text/plain	\N	\N	639321138000000000	639321138000000000	12	f	\N	\N	0	0	text/plain	\N	\N	\N	\N	0	8	639321144000000000
3	json	117736431943680003	0	application/json	\N	\N	639321121800000000	639321121800000000	31	f	\N	\N	0	0	application/json	\N	\N	\N	\N	0	0	\N
4	closed	117736435875840004	0	text/plain	\N	\N	639321122400000000	639321122400000000	5	t	\N	\N	0	0	text/plain	\N	\N	\N	\N	0	0	\N
5	ttl	117736439808000005	0	text/plain	86400	\N	639321123000000000	639321123000000000	1	f	\N	\N	0	0	text/plain	86400	\N	\N	\N	0	0	\N
6	expires	117736443740160006	0	text/plain	\N	639347040000000000	639321123600000000	639321123600000000	1	f	\N	\N	0	0	text/plain	\N	639347040000000000	\N	\N	0	0	\N
7	src	117736447672320007	0	text/plain	\N	\N	639321124200000000	639321124200000000	6	f	\N	\N	0	1	text/plain	\N	\N	\N	\N	0	0	\N
8	fork	117736451604480008	0	text/plain	\N	\N	639321124800000000	639321124800000000	6	f	\N	7	3	1	text/plain	\N	\N	src	3	0	0	\N
9	fork2	117736455536640009	0	text/plain	\N	\N	639321125400000000	639321125400000000	7	f	\N	8	5	0	text/plain	\N	\N	fork	5	0	0	\N
11	gone-fork	117736463400960011	0	text/plain	\N	\N	639321126600000000	639321126600000000	6	f	\N	10	4	0	text/plain	\N	\N	gone-src	4	0	0	\N
12	producers	117736467333120012	0	text/plain	\N	\N	639321127200000000	639321127200000000	4	f	\N	\N	0	0	text/plain	\N	\N	\N	\N	0	0	\N
10	gone-src	117736459468800010	1	text/plain	\N	\N	639321126000000000	639321126000000000	10	f	\N	\N	0	1	text/plain	\N	\N	\N	\N	0	0	\N
14	late	117736498790400014	0	text/plain	\N	\N	639321132000000000	639321132000000000	33	f	\N	\N	0	0	text/plain	\N	\N	\N	\N	0	0	\N
\.


--
-- Data for Name: ds_subscription_keys; Type: TABLE DATA; Schema: fixture_v2; Owner: -
--

COPY fixture_v2.ds_subscription_keys (id, keys) FROM stdin;
1	[{"kid": "k1", "created_at": "2026-12-06T00:35:00+00:00", "public_key": "cHVibGljLWtleS1vbmUtZm9yLXRoZS1maXh0dXJl", "private_key": "cHJpdmF0ZS1rZXktb25lLWZvci10aGUtZml4dHVyZQ", "retire_after": "2026-12-13T00:00:00+00:00"}, {"kid": "k2", "created_at": "2026-12-06T00:36:00+00:00", "public_key": "cHVibGljLWtleS10d28tZm9yLXRoZS1maXh0dXJl", "private_key": "cHJpdmF0ZS1rZXktdHdvLWZvci10aGUtZml4dHVyZQ", "retire_after": null}]
\.


--
-- Data for Name: ds_subscriptions; Type: TABLE DATA; Schema: fixture_v2; Owner: -
--

COPY fixture_v2.ds_subscriptions (id, version, state, lease_expires_ticks, next_attempt_ticks) FROM stdin;
sub-webhook	1	{"id": "sub-webhook", "type": "webhook", "links": {"text": {"glob": false, "explicit": true, "acked_offset": "0000000000000000_0000000000000006"}, "orders/1": {"glob": true, "explicit": false, "acked_offset": "-1"}}, "pattern": "orders/*", "streams": ["text"], "wake_id": "wake-3", "base_url": "http://127.0.0.1:4437/v1/stream/", "created_at": "2026-12-06T00:30:00+00:00", "generation": 3, "config_hash": "fixture-hash-webhook", "description": "fixture webhook", "retry_count": 2, "wake_stream": null, "webhook_url": "https://hooks.example.com/ds", "lease_holder": null, "lease_ttl_ms": 30000, "wake_snapshot": {"text": "0000000000000000_0000000000000010"}, "next_attempt_at": "2026-12-06T00:31:00+00:00", "lease_expires_at": null}	\N	639321138600000000
sub-pull	1	{"id": "sub-pull", "type": "pull-wake", "links": {"json": {"glob": false, "explicit": true, "acked_offset": "0000000000000000_0000000000000008"}}, "pattern": null, "streams": ["json", "bytes"], "wake_id": null, "base_url": null, "created_at": "2026-12-06T00:32:00+00:00", "generation": 1, "config_hash": "fixture-hash-pull", "description": null, "retry_count": 0, "wake_stream": "wakes", "webhook_url": null, "lease_holder": "worker-1", "lease_ttl_ms": 60000, "wake_snapshot": {}, "next_attempt_at": null, "lease_expires_at": "2026-12-06T00:33:00+00:00"}	639321139800000000	\N
\.


--
-- Name: ds_incarnation; Type: SEQUENCE SET; Schema: fixture_v2; Owner: -
--

SELECT pg_catalog.setval('fixture_v2.ds_incarnation', 15, true);


--
-- Name: ds_streams_id_seq; Type: SEQUENCE SET; Schema: fixture_v2; Owner: -
--

SELECT pg_catalog.setval('fixture_v2.ds_streams_id_seq', 15, true);


--
-- Name: ds_append_times ds_append_times_pkey; Type: CONSTRAINT; Schema: fixture_v2; Owner: -
--

ALTER TABLE ONLY fixture_v2.ds_append_times
    ADD CONSTRAINT ds_append_times_pkey PRIMARY KEY (stream_id, "position");


--
-- Name: ds_data ds_data_pkey; Type: CONSTRAINT; Schema: fixture_v2; Owner: -
--

ALTER TABLE ONLY fixture_v2.ds_data
    ADD CONSTRAINT ds_data_pkey PRIMARY KEY (stream_id, start_pos);


--
-- Name: ds_producers ds_producers_pkey; Type: CONSTRAINT; Schema: fixture_v2; Owner: -
--

ALTER TABLE ONLY fixture_v2.ds_producers
    ADD CONSTRAINT ds_producers_pkey PRIMARY KEY (stream_id, producer_id);


--
-- Name: ds_streams ds_streams_pkey; Type: CONSTRAINT; Schema: fixture_v2; Owner: -
--

ALTER TABLE ONLY fixture_v2.ds_streams
    ADD CONSTRAINT ds_streams_pkey PRIMARY KEY (id);


--
-- Name: ds_subscription_keys ds_subscription_keys_pkey; Type: CONSTRAINT; Schema: fixture_v2; Owner: -
--

ALTER TABLE ONLY fixture_v2.ds_subscription_keys
    ADD CONSTRAINT ds_subscription_keys_pkey PRIMARY KEY (id);


--
-- Name: ds_subscriptions ds_subscriptions_pkey; Type: CONSTRAINT; Schema: fixture_v2; Owner: -
--

ALTER TABLE ONLY fixture_v2.ds_subscriptions
    ADD CONSTRAINT ds_subscriptions_pkey PRIMARY KEY (id);


--
-- Name: ds_producers_idle; Type: INDEX; Schema: fixture_v2; Owner: -
--

CREATE INDEX ds_producers_idle ON fixture_v2.ds_producers USING btree (updated_ticks);


--
-- Name: ds_streams_expiring; Type: INDEX; Schema: fixture_v2; Owner: -
--

CREATE INDEX ds_streams_expiring ON fixture_v2.ds_streams USING btree (id) WHERE ((state = 0) AND ((ttl_seconds IS NOT NULL) OR (expires_ticks IS NOT NULL)));


--
-- Name: ds_streams_name; Type: INDEX; Schema: fixture_v2; Owner: -
--

CREATE UNIQUE INDEX ds_streams_name ON fixture_v2.ds_streams USING btree (name) WHERE (state < 2);


--
-- Name: ds_subscriptions_due; Type: INDEX; Schema: fixture_v2; Owner: -
--

CREATE INDEX ds_subscriptions_due ON fixture_v2.ds_subscriptions USING btree (COALESCE(lease_expires_ticks, next_attempt_ticks));


--
-- Name: ds_append_times ds_append_times_stream_id_fkey; Type: FK CONSTRAINT; Schema: fixture_v2; Owner: -
--

ALTER TABLE ONLY fixture_v2.ds_append_times
    ADD CONSTRAINT ds_append_times_stream_id_fkey FOREIGN KEY (stream_id) REFERENCES fixture_v2.ds_streams(id) ON DELETE CASCADE;


--
-- Name: ds_data ds_data_stream_id_fkey; Type: FK CONSTRAINT; Schema: fixture_v2; Owner: -
--

ALTER TABLE ONLY fixture_v2.ds_data
    ADD CONSTRAINT ds_data_stream_id_fkey FOREIGN KEY (stream_id) REFERENCES fixture_v2.ds_streams(id) ON DELETE CASCADE;


--
-- Name: ds_producers ds_producers_stream_id_fkey; Type: FK CONSTRAINT; Schema: fixture_v2; Owner: -
--

ALTER TABLE ONLY fixture_v2.ds_producers
    ADD CONSTRAINT ds_producers_stream_id_fkey FOREIGN KEY (stream_id) REFERENCES fixture_v2.ds_streams(id) ON DELETE CASCADE;


--
-- Name: ds_streams ds_streams_source_id_fkey; Type: FK CONSTRAINT; Schema: fixture_v2; Owner: -
--

ALTER TABLE ONLY fixture_v2.ds_streams
    ADD CONSTRAINT ds_streams_source_id_fkey FOREIGN KEY (source_id) REFERENCES fixture_v2.ds_streams(id);


--
-- PostgreSQL database dump complete
--


