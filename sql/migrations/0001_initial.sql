-- 0001_initial: the seed's schema (DESIGN section 14) plus the trade lifecycle (DESIGN section 6).
-- Applied once, in one transaction, by sql/migrate.py. Never edit after it has been applied
-- anywhere: the runner refuses a changed checksum. Add a new numbered file instead.

-- Keeps updated_at honest without every writer remembering to set it.
CREATE FUNCTION xorj_touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

CREATE TABLE users (
    id             varchar(64) PRIMARY KEY,
    wallet_address varchar(64) NOT NULL UNIQUE,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE user_settings (
    id                 serial PRIMARY KEY,
    user_id            varchar(64) NOT NULL UNIQUE REFERENCES users(id) ON DELETE CASCADE,
    risk_profile       varchar(16) NOT NULL DEFAULT 'BALANCED'
                       CONSTRAINT user_settings_risk_profile_check
                       CHECK (risk_profile IN ('CONSERVATIVE', 'BALANCED', 'AGGRESSIVE')),
    max_trade_amount   decimal(20, 6) CHECK (max_trade_amount IS NULL OR max_trade_amount > 0),
    -- percent; DESIGN section 8: hard cap 5 %
    slippage_tolerance decimal(5, 2) NOT NULL DEFAULT 1.0
                       CONSTRAINT user_settings_slippage_tolerance_check
                       CHECK (slippage_tolerance > 0 AND slippage_tolerance <= 5),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE scoring_runs (
    id               varchar(64) PRIMARY KEY,
    status           varchar(16) NOT NULL
                     CONSTRAINT scoring_runs_status_check
                     CHECK (status IN ('RUNNING', 'COMPLETED', 'FAILED')),
    traders_analyzed integer NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX scoring_runs_created_at_idx ON scoring_runs (created_at DESC);

CREATE TABLE trader_scores (
    id               varchar(64) PRIMARY KEY,
    run_id           varchar(64) NOT NULL REFERENCES scoring_runs(id) ON DELETE CASCADE,
    wallet_address   varchar(64) NOT NULL,
    xorj_trust_score decimal(10, 2) NOT NULL,
    win_rate         decimal(5, 2),
    total_return     decimal(10, 2),
    max_drawdown     decimal(5, 2),
    trade_count      integer,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (run_id, wallet_address)
);
CREATE INDEX trader_scores_run_score_idx ON trader_scores (run_id, xorj_trust_score DESC);

CREATE TABLE execution_jobs (
    id            varchar(64) PRIMARY KEY,
    user_id       varchar(64) NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    status        varchar(16) NOT NULL
                  CONSTRAINT execution_jobs_status_check
                  CHECK (status IN ('PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED')),
    target_trader varchar(64),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX execution_jobs_status_idx ON execution_jobs (status);

-- One row per attempt. An intent (the executor's decision, `intent_id`) may need several
-- attempts; a new attempt is only legal once the previous one is terminal (partial unique index
-- below), which is what makes "never two executions of one intent" a database fact.
CREATE TABLE trades (
    id                      varchar(64) PRIMARY KEY,
    user_id                 varchar(64) NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    execution_job_id        varchar(64) REFERENCES execution_jobs(id),
    intent_id               varchar(128) NOT NULL,
    attempt                 integer NOT NULL DEFAULT 1 CONSTRAINT trades_attempt_check CHECK (attempt >= 1),
    idempotency_key         varchar(256) NOT NULL CONSTRAINT trades_idempotency_key_key UNIQUE,
    from_token              varchar(64) NOT NULL,
    to_token                varchar(64) NOT NULL,
    amount                  decimal(20, 6) NOT NULL CONSTRAINT trades_amount_check CHECK (amount > 0),
    status                  varchar(16) NOT NULL DEFAULT 'PENDING'
                            CONSTRAINT trades_status_check
                            CHECK (status IN ('PENDING', 'SUBMITTED', 'CONFIRMED', 'FAILED')),
    slippage                decimal(5, 2),
    transaction_signature   varchar(128) CONSTRAINT trades_transaction_signature_key UNIQUE,
    signed_transaction      bytea,
    last_valid_block_height bigint,
    failure_reason          text,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT trades_intent_attempt_key UNIQUE (intent_id, attempt),
    -- Nothing is sent before the signed bytes, signature and expiry height are durable.
    CONSTRAINT trades_sent_is_durable_check CHECK (
        status = 'PENDING' OR status = 'FAILED' OR (
            signed_transaction IS NOT NULL
            AND transaction_signature IS NOT NULL
            AND last_valid_block_height IS NOT NULL)),
    CONSTRAINT trades_failed_has_reason_check CHECK (status <> 'FAILED' OR failure_reason IS NOT NULL)
);
CREATE INDEX trades_user_created_idx ON trades (user_id, created_at DESC);
CREATE INDEX trades_non_terminal_idx ON trades (status) WHERE status IN ('PENDING', 'SUBMITTED');
CREATE UNIQUE INDEX trades_one_live_attempt_per_intent
    ON trades (intent_id) WHERE status IN ('PENDING', 'SUBMITTED');

CREATE TRIGGER users_touch BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION xorj_touch_updated_at();
CREATE TRIGGER user_settings_touch BEFORE UPDATE ON user_settings
    FOR EACH ROW EXECUTE FUNCTION xorj_touch_updated_at();
CREATE TRIGGER scoring_runs_touch BEFORE UPDATE ON scoring_runs
    FOR EACH ROW EXECUTE FUNCTION xorj_touch_updated_at();
CREATE TRIGGER execution_jobs_touch BEFORE UPDATE ON execution_jobs
    FOR EACH ROW EXECUTE FUNCTION xorj_touch_updated_at();

-- Append-only audit of every trade status change. Written by the trigger on `trades` (so no
-- transition can go unrecorded); code may append further rows (e.g. a resend) with
-- from_status = to_status. No ON DELETE CASCADE: the audit trail outlives nothing silently, so
-- deleting a user who has traded is refused.
CREATE TABLE trade_events (
    id          bigserial PRIMARY KEY,
    trade_id    varchar(64) NOT NULL REFERENCES trades(id),
    from_status varchar(16)
                CHECK (from_status IS NULL OR from_status IN ('PENDING', 'SUBMITTED', 'CONFIRMED', 'FAILED')),
    to_status   varchar(16) NOT NULL
                CHECK (to_status IN ('PENDING', 'SUBMITTED', 'CONFIRMED', 'FAILED')),
    reason      text,
    details     jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX trade_events_trade_idx ON trade_events (trade_id, id);

CREATE FUNCTION xorj_trade_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'trade_events is append-only: % refused', TG_OP
        USING ERRCODE = 'restrict_violation', CONSTRAINT = 'trade_events_append_only',
              TABLE = 'trade_events';
END;
$$;
CREATE TRIGGER trade_events_append_only BEFORE UPDATE OR DELETE ON trade_events
    FOR EACH ROW EXECUTE FUNCTION xorj_trade_events_append_only();
CREATE TRIGGER trade_events_no_truncate BEFORE TRUNCATE ON trade_events
    FOR EACH STATEMENT EXECUTE FUNCTION xorj_trade_events_append_only();

-- The trade lifecycle, mirrored from the code's transition table (DESIGN section 6):
--   PENDING -> SUBMITTED | FAILED;  SUBMITTED -> CONFIRMED | FAILED;  same state -> no-op.
-- CONFIRMED and FAILED are terminal. A trade is born PENDING.
CREATE FUNCTION xorj_trades_guard_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.status <> 'PENDING' THEN
            RAISE EXCEPTION 'illegal trade transition: a trade starts PENDING, not %', NEW.status
                USING ERRCODE = 'check_violation', CONSTRAINT = 'trades_status_transition',
                      TABLE = 'trades';
        END IF;
    ELSIF NEW.status IS DISTINCT FROM OLD.status THEN
        IF NOT ((OLD.status = 'PENDING' AND NEW.status IN ('SUBMITTED', 'FAILED'))
             OR (OLD.status = 'SUBMITTED' AND NEW.status IN ('CONFIRMED', 'FAILED'))) THEN
            RAISE EXCEPTION 'illegal trade transition % -> % (trade %)', OLD.status, NEW.status, OLD.id
                USING ERRCODE = 'check_violation', CONSTRAINT = 'trades_status_transition',
                      TABLE = 'trades';
        END IF;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER trades_guard_transition BEFORE INSERT OR UPDATE ON trades
    FOR EACH ROW EXECUTE FUNCTION xorj_trades_guard_transition();

CREATE FUNCTION xorj_trades_record_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.status IS DISTINCT FROM OLD.status THEN
        INSERT INTO trade_events (trade_id, from_status, to_status, reason, details)
        VALUES (
            NEW.id,
            CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE OLD.status END,
            NEW.status,
            CASE WHEN NEW.status = 'FAILED' THEN NEW.failure_reason END,
            jsonb_strip_nulls(jsonb_build_object(
                'intent_id', NEW.intent_id,
                'attempt', NEW.attempt,
                'transaction_signature', NEW.transaction_signature,
                'last_valid_block_height', NEW.last_valid_block_height)));
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER trades_record_event AFTER INSERT OR UPDATE ON trades
    FOR EACH ROW EXECUTE FUNCTION xorj_trades_record_event();

CREATE TABLE alerts (
    id         bigserial PRIMARY KEY,
    severity   varchar(16) NOT NULL
               CONSTRAINT alerts_severity_check CHECK (severity IN ('INFO', 'WARNING', 'CRITICAL')),
    kind       varchar(64) NOT NULL,
    subject    varchar(256) NOT NULL,
    details    jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- Same dedup_key -> the same alert (INSERT ... ON CONFLICT (dedup_key) DO NOTHING).
    dedup_key  varchar(256) CONSTRAINT alerts_dedup_key_key UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alerts_created_at_idx ON alerts (created_at DESC);
CREATE INDEX alerts_kind_created_idx ON alerts (kind, created_at DESC);
