-- tradestate postgres plugin, schema version 3: the session envelope (lineage, journal id and seq) with each snapshot, journal_heads.last_seq, rename_session().
-- Run once, in the migration's transaction, by migrate_v3() in postgres_backend.cpp; run_ddl()
-- puts in the quoted schema and the notification channel first (docs/scale-out.md).
ALTER TABLE S.snapshots ADD COLUMN lineage text, ADD COLUMN journal_id text, ADD COLUMN journal_seq bigint;
ALTER TABLE S.journal_heads ADD COLUMN last_seq bigint;
UPDATE S.journal_heads h
    SET last_seq = coalesce((SELECT max(j.seq) FROM S.journal j WHERE j.session = h.session), h.base_seq);
DROP FUNCTION S.save_snapshot(text, bigint, text, bigint, bigint, bigint, text, text, text, integer, text, boolean);
CREATE FUNCTION S.save_snapshot(p_session text, p_generation bigint, p_saved_at text, p_iteration bigint,
                                p_positions bigint, p_cash_paise bigint, p_checksum text, p_doc text,
                                p_views text, p_keep integer, p_token text, p_jsonb boolean,
                                p_lineage text, p_journal_id text, p_journal_seq bigint) RETURNS bigint
LANGUAGE plpgsql AS $f$
DECLARE
    v_seq bigint;
BEGIN
    PERFORM S.check_writer(p_session, p_generation);
    PERFORM pg_advisory_xact_lock(S.save_key(p_session));
    INSERT INTO S.sessions AS t (name, sequence) VALUES (p_session, 1)
    ON CONFLICT (name) DO UPDATE SET sequence = t.sequence + 1, updated_at = now()
    RETURNING t.sequence INTO v_seq;
    INSERT INTO S.snapshots (session, sequence, saved_at, iteration, positions, cash_paise, checksum, doc_text,
                             document, save_token, lineage, journal_id, journal_seq)
    VALUES (p_session, v_seq, p_saved_at, p_iteration, p_positions, p_cash_paise, p_checksum, p_doc,
            CASE WHEN p_jsonb THEN S.try_jsonb(p_doc) END, p_token, p_lineage, p_journal_id, p_journal_seq);
    IF p_views IS NOT NULL THEN
        DELETE FROM S.views v WHERE v.session = p_session
            AND NOT EXISTS (SELECT 1 FROM json_each(p_views::json) j WHERE j.key = v.name);
        INSERT INTO S.views AS v (session, name, doc_text, document, updated_at)
        SELECT p_session, j.key, j.value::text, CASE WHEN p_jsonb THEN S.try_jsonb(j.value::text) END, now()
        FROM json_each(p_views::json) j
        ON CONFLICT (session, name) DO UPDATE
            SET doc_text = excluded.doc_text, document = excluded.document, updated_at = now();
    END IF;
    IF p_keep > 0 THEN
        DELETE FROM S.snapshots WHERE session = p_session AND sequence <= v_seq - p_keep;
    END IF;
    PERFORM pg_notify('CHANNEL', p_session || ':' || v_seq);
    RETURN v_seq;
END $f$;
DROP FUNCTION S.read_snapshot(text, bigint, bigint);
CREATE FUNCTION S.read_snapshot(p_session text, p_before bigint, p_at bigint)
RETURNS TABLE (sequence bigint, saved_at text, iteration bigint, positions bigint, cash_paise bigint,
               checksum text, doc_text text, lineage text, journal_id text, journal_seq bigint)
LANGUAGE plpgsql VOLATILE AS $f$
#variable_conflict use_column
BEGIN
    BEGIN
        PERFORM set_config('lock_timeout', '2000', true);
        PERFORM pg_advisory_xact_lock_shared(S.save_key(p_session));
    EXCEPTION WHEN lock_not_available THEN
        NULL;
    END;
    RETURN QUERY
        SELECT n.sequence, n.saved_at, n.iteration, n.positions, n.cash_paise, n.checksum, n.doc_text,
               n.lineage, n.journal_id, n.journal_seq
        FROM S.snapshots n
        WHERE n.session = p_session AND (p_at IS NULL OR n.sequence = p_at)
          AND (p_before IS NULL OR n.sequence < p_before)
        ORDER BY n.sequence DESC LIMIT 1;
END $f$;
CREATE OR REPLACE FUNCTION S.journal_start(p_session text, p_generation bigint, p_id text, p_base bigint) RETURNS bigint
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
    INSERT INTO S.journal_heads AS h (session, journal_id, base_seq, last_seq) VALUES (p_session, p_id, p_base, p_base)
    ON CONFLICT (session) DO UPDATE SET journal_id = p_id, base_seq = p_base, last_seq = p_base, started_at = now();
    RETURN v_kept;
END $f$;
CREATE OR REPLACE FUNCTION S.journal_append(p_session text, p_generation bigint, p_id text, p_first bigint,
                                 p_payloads text[], p_sums text[]) RETURNS bigint
LANGUAGE plpgsql AS $f$
DECLARE
    v_id text;
    v_last bigint;
    v_sum text;
    v_end bigint := p_first + cardinality(p_payloads) - 1;
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
            RETURN v_end;
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
    UPDATE S.journal_heads SET last_seq = greatest(coalesce(last_seq, 0), v_end) WHERE session = p_session;
    RETURN v_end;
END $f$;
-- Give session p_from, with its snapshots, views and journal, the name p_to.
CREATE FUNCTION S.rename_session(p_from text, p_to text, p_generation bigint) RETURNS void
LANGUAGE plpgsql AS $f$
BEGIN
    PERFORM S.check_writer(p_from, p_generation);
    IF EXISTS (SELECT 1 FROM S.sessions WHERE name = p_to) OR EXISTS (SELECT 1 FROM S.journal_heads WHERE session = p_to) THEN
        RAISE EXCEPTION 'session % exists', p_to USING ERRCODE = 'TSR01';
    END IF;
    INSERT INTO S.sessions (name, sequence, created_at, updated_at)
        SELECT p_to, sequence, created_at, now() FROM S.sessions WHERE name = p_from;
    UPDATE S.snapshots SET session = p_to WHERE session = p_from;
    UPDATE S.views SET session = p_to WHERE session = p_from;
    DELETE FROM S.sessions WHERE name = p_from;
    INSERT INTO S.journal_heads (session, journal_id, base_seq, started_at, last_seq)
        SELECT p_to, journal_id, base_seq, started_at, last_seq FROM S.journal_heads WHERE session = p_from;
    UPDATE S.journal SET session = p_to WHERE session = p_from;
    DELETE FROM S.journal_heads WHERE session = p_from;
    UPDATE S.journal_replaced SET session = p_to WHERE session = p_from;
END $f$;
INSERT INTO S.schema_version (version, applied_by) VALUES (3, 'tradestate postgres plugin');
