-- tradestate postgres plugin, schema version 2: the per-trade journal (Backend::journal_*): one head row per session, its records, and the records a new journal replaced before a snapshot held them.
-- Run once, in the migration's transaction, by migrate_v2() in postgres_backend.cpp; run_ddl()
-- puts in the quoted schema and the notification channel first (docs/scale-out.md).
CREATE TABLE S.journal_heads (
    session     text PRIMARY KEY,
    journal_id  text NOT NULL,
    base_seq    bigint NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE S.journal (
    session     text NOT NULL REFERENCES S.journal_heads(session) ON DELETE CASCADE,
    seq         bigint NOT NULL,
    payload     text NOT NULL,
    checksum    text NOT NULL,
    written_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session, seq)
);
CREATE TABLE S.journal_replaced (
    session     text NOT NULL,
    journal_id  text NOT NULL,
    seq         bigint NOT NULL,
    payload     text NOT NULL,
    checksum    text NOT NULL,
    written_at  timestamptz NOT NULL,
    replaced_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON S.journal_replaced (session, replaced_at);
-- Lease fencing shared by the journal functions (as in save_snapshot).
CREATE FUNCTION S.check_writer(p_session text, p_generation bigint) RETURNS void LANGUAGE plpgsql AS $f$
DECLARE
    v_gen bigint;
BEGIN
    IF p_generation IS NULL THEN
        IF NOT pg_try_advisory_xact_lock_shared(S.lock_key(p_session)) THEN
            RAISE EXCEPTION 'session % is leased by another writer', p_session USING ERRCODE = 'TSL01';
        END IF;
    ELSE
        SELECT generation INTO v_gen FROM S.leases WHERE session = p_session FOR SHARE;
        IF v_gen IS DISTINCT FROM p_generation THEN
            RAISE EXCEPTION 'lease generation is now %, this writer holds %', coalesce(v_gen::text, 'none'), p_generation
                USING ERRCODE = 'TSL02';
        END IF;
    END IF;
END $f$;
CREATE FUNCTION S.journal_start(p_session text, p_generation bigint, p_id text, p_base bigint) RETURNS bigint
LANGUAGE plpgsql AS $f$
DECLARE
    v_kept bigint;
BEGIN
    PERFORM S.check_writer(p_session, p_generation);
    INSERT INTO S.journal_replaced (session, journal_id, seq, payload, checksum, written_at)
    SELECT j.session, h.journal_id, j.seq, j.payload, j.checksum, j.written_at
    FROM S.journal j JOIN S.journal_heads h USING (session) WHERE j.session = p_session;
    GET DIAGNOSTICS v_kept = ROW_COUNT;
    DELETE FROM S.journal WHERE session = p_session;
    INSERT INTO S.journal_heads AS h (session, journal_id, base_seq) VALUES (p_session, p_id, p_base)
    ON CONFLICT (session) DO UPDATE SET journal_id = p_id, base_seq = p_base, started_at = now();
    RETURN v_kept;
END $f$;
-- Append records p_first .. p_first + n - 1 to journal p_id. Idempotent for
-- a retry after a lost connection: the same records already there are a success.
CREATE FUNCTION S.journal_append(p_session text, p_generation bigint, p_id text, p_first bigint,
                                 p_payloads text[], p_sums text[]) RETURNS bigint
LANGUAGE plpgsql AS $f$
DECLARE
    v_id text;
    v_last bigint;
    v_sum text;
BEGIN
    PERFORM S.check_writer(p_session, p_generation);
    SELECT journal_id, base_seq INTO v_id, v_last FROM S.journal_heads WHERE session = p_session FOR UPDATE;
    IF v_id IS DISTINCT FROM p_id THEN
        RAISE EXCEPTION 'the current journal of session % is %, not %', p_session, coalesce(v_id, 'none'), p_id
            USING ERRCODE = 'TSJ01';
    END IF;
    SELECT checksum INTO v_sum FROM S.journal WHERE session = p_session AND seq = p_first;
    IF FOUND THEN
        IF v_sum = p_sums[1] THEN
            RETURN p_first + cardinality(p_payloads) - 1;
        END IF;
        RAISE EXCEPTION 'journal record % of session % already holds other data', p_first, p_session
            USING ERRCODE = 'TSJ02';
    END IF;
    SELECT coalesce(max(seq), v_last) INTO v_last FROM S.journal WHERE session = p_session;
    IF v_last <> p_first - 1 THEN
        RAISE EXCEPTION 'journal of session % ends at record %, the append starts at %', p_session, v_last, p_first
            USING ERRCODE = 'TSJ02';
    END IF;
    INSERT INTO S.journal (session, seq, payload, checksum)
    SELECT p_session, p_first + o - 1, p, c FROM unnest(p_payloads, p_sums) WITH ORDINALITY AS u(p, c, o);
    RETURN p_first + cardinality(p_payloads) - 1;
END $f$;
CREATE FUNCTION S.journal_compact(p_session text, p_generation bigint, p_id text, p_through bigint) RETURNS void
LANGUAGE plpgsql AS $f$
BEGIN
    PERFORM S.check_writer(p_session, p_generation);
    UPDATE S.journal_heads SET base_seq = greatest(base_seq, p_through)
    WHERE session = p_session AND journal_id = p_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the current journal of session % is not %', p_session, p_id USING ERRCODE = 'TSJ01';
    END IF;
    DELETE FROM S.journal WHERE session = p_session AND seq <= p_through;
END $f$;
INSERT INTO S.schema_version (version, applied_by) VALUES (2, 'tradestate postgres plugin');
