-- tradestate postgres plugin, schema version 1: the sessions, their snapshots and views, leases, and the functions that save and read them.
-- Run once, in the migration's transaction, by migrate_v1() in postgres_backend.cpp; run_ddl()
-- puts in the quoted schema and the notification channel first (docs/scale-out.md).
CREATE TABLE S.sessions (
    name        text PRIMARY KEY,
    sequence    bigint NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE S.snapshots (
    session     text NOT NULL REFERENCES S.sessions(name) ON DELETE CASCADE,
    sequence    bigint NOT NULL,
    saved_at    text NOT NULL,
    iteration   bigint NOT NULL,
    positions   bigint NOT NULL,
    cash_paise  bigint NOT NULL,
    checksum    text NOT NULL,
    doc_text    text NOT NULL,
    document    jsonb,
    save_token  text,
    written_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session, sequence)
);
CREATE TABLE S.views (
    session     text NOT NULL REFERENCES S.sessions(name) ON DELETE CASCADE,
    name        text NOT NULL,
    doc_text    text NOT NULL,
    document    jsonb,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session, name)
);
CREATE TABLE S.leases (
    session     text PRIMARY KEY,
    generation  bigint NOT NULL,
    app         text,
    host        text,
    pid         integer,
    backend_pid integer,
    acquired_at timestamptz NOT NULL DEFAULT now(),
    released_at timestamptz
);
CREATE FUNCTION S.lock_key(p_session text) RETURNS bigint LANGUAGE sql IMMUTABLE
    AS $f$ SELECT hashtextextended('tradestate:SCHEMANAME:' || p_session, 0) $f$;
CREATE FUNCTION S.save_key(p_session text) RETURNS bigint LANGUAGE sql IMMUTABLE
    AS $f$ SELECT hashtextextended('tradestate-save:SCHEMANAME:' || p_session, 0) $f$;
-- The newest snapshot (below p_before / exactly p_at when given), after
-- waiting (at most 2 s) for a save of the session that is in progress: a
-- save whose COMMIT was sent is then visible, one whose COMMIT was not sent
-- can never commit (see save()).
CREATE FUNCTION S.read_snapshot(p_session text, p_before bigint, p_at bigint)
RETURNS TABLE (sequence bigint, saved_at text, iteration bigint, positions bigint, cash_paise bigint,
               checksum text, doc_text text)
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
        SELECT n.sequence, n.saved_at, n.iteration, n.positions, n.cash_paise, n.checksum, n.doc_text
        FROM S.snapshots n
        WHERE n.session = p_session AND (p_at IS NULL OR n.sequence = p_at)
          AND (p_before IS NULL OR n.sequence < p_before)
        ORDER BY n.sequence DESC LIMIT 1;
END $f$;
CREATE FUNCTION S.try_jsonb(p_text text) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $f$
BEGIN
    RETURN p_text::jsonb;
EXCEPTION WHEN others THEN
    RETURN NULL;  -- e.g. \u0000, which jsonb cannot hold; doc_text stays authoritative
END $f$;
CREATE FUNCTION S.acquire_lease(p_session text, p_app text, p_host text, p_pid integer) RETURNS bigint
LANGUAGE plpgsql AS $f$
DECLARE v_gen bigint;
BEGIN
    IF NOT pg_try_advisory_lock(S.lock_key(p_session)) THEN
        RETURN NULL;
    END IF;
    INSERT INTO S.leases AS l (session, generation, app, host, pid, backend_pid, acquired_at, released_at)
    VALUES (p_session, 1, p_app, p_host, p_pid, pg_backend_pid(), now(), NULL)
    ON CONFLICT (session) DO UPDATE
        SET generation = l.generation + 1, app = p_app, host = p_host, pid = p_pid,
            backend_pid = pg_backend_pid(), acquired_at = now(), released_at = NULL
    RETURNING generation INTO v_gen;
    RETURN v_gen;
END $f$;
CREATE FUNCTION S.save_snapshot(p_session text, p_generation bigint, p_saved_at text, p_iteration bigint,
                                p_positions bigint, p_cash_paise bigint, p_checksum text, p_doc text,
                                p_views text, p_keep integer, p_token text, p_jsonb boolean) RETURNS bigint
LANGUAGE plpgsql AS $f$
DECLARE
    v_seq bigint;
    v_gen bigint;
BEGIN
    IF p_generation IS NULL THEN
        IF NOT pg_try_advisory_xact_lock_shared(S.lock_key(p_session)) THEN
            RAISE EXCEPTION 'session % is leased by another writer', p_session USING ERRCODE = 'TSL01';
        END IF;
    ELSE
        SELECT generation INTO v_gen FROM S.leases WHERE session = p_session FOR UPDATE;
        IF v_gen IS DISTINCT FROM p_generation THEN
            RAISE EXCEPTION 'lease generation is now %, this writer holds %', coalesce(v_gen::text, 'none'), p_generation
                USING ERRCODE = 'TSL02';
        END IF;
    END IF;
    PERFORM pg_advisory_xact_lock(S.save_key(p_session));
    INSERT INTO S.sessions AS t (name, sequence) VALUES (p_session, 1)
    ON CONFLICT (name) DO UPDATE SET sequence = t.sequence + 1, updated_at = now()
    RETURNING t.sequence INTO v_seq;
    INSERT INTO S.snapshots (session, sequence, saved_at, iteration, positions, cash_paise, checksum, doc_text,
                             document, save_token)
    VALUES (p_session, v_seq, p_saved_at, p_iteration, p_positions, p_cash_paise, p_checksum, p_doc,
            CASE WHEN p_jsonb THEN S.try_jsonb(p_doc) END, p_token);
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
INSERT INTO S.schema_version (version, applied_by) VALUES (1, 'tradestate postgres plugin');
