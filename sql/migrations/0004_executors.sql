-- 0004_executors: what copy trading needs beyond the seed's users / user_settings / execution_jobs
-- (issue 6, DESIGN sections 5, 6 and 8): the per-user switch and limits, the kill switches
-- (Postgres is authoritative; Redis only mirrors the global one), the plan an execution job
-- carried out, and a link from a job to the scoring run whose ranking it followed.
-- Never edit after it has been applied anywhere; add a new numbered file instead.

ALTER TABLE user_settings
    -- the bot trades for this user only while true (`xorj ctl users enable|disable`)
    ADD COLUMN bot_enabled        boolean NOT NULL DEFAULT false,
    -- the vault PDA the enable check found on chain (names the bot key as its authority)
    ADD COLUMN vault_address      varchar(64),
    -- USD; a day's realised + unrealised loss beyond this stops new intents for the user
    ADD COLUMN max_daily_loss_usd decimal(20, 6)
                                  CONSTRAINT user_settings_max_daily_loss_check
                                  CHECK (max_daily_loss_usd IS NULL OR max_daily_loss_usd > 0),
    -- percent of the vault's value one non-USDC position may reach; NULL: the profile's default
    ADD COLUMN max_position_pct   decimal(5, 2)
                                  CONSTRAINT user_settings_max_position_pct_check
                                  CHECK (max_position_pct IS NULL OR (max_position_pct > 0 AND max_position_pct <= 100)),
    ADD COLUMN enabled_at         timestamptz,
    ADD COLUMN disabled_reason    text;

CREATE INDEX user_settings_enabled_idx ON user_settings (user_id) WHERE bot_enabled;

-- One row per scope: 'global', or 'user:<user id>'. engaged=false rows keep the last reason.
CREATE TABLE kill_switches (
    scope      varchar(80) PRIMARY KEY
               CONSTRAINT kill_switches_scope_check CHECK (scope = 'global' OR scope LIKE 'user:%'),
    engaged    boolean NOT NULL,
    reason     text NOT NULL CONSTRAINT kill_switches_reason_check CHECK (length(reason) > 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER kill_switches_touch BEFORE UPDATE ON kill_switches
    FOR EACH ROW EXECUTE FUNCTION xorj_touch_updated_at();

-- Every change of a kill switch, for the audit trail (append-only like trade_events).
CREATE TABLE kill_switch_events (
    id         bigserial PRIMARY KEY,
    scope      varchar(80) NOT NULL,
    engaged    boolean NOT NULL,
    reason     text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE FUNCTION xorj_kill_switch_record_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO kill_switch_events (scope, engaged, reason) VALUES (NEW.scope, NEW.engaged, NEW.reason);
    RETURN NULL;
END;
$$;
CREATE TRIGGER kill_switches_record_event AFTER INSERT OR UPDATE ON kill_switches
    FOR EACH ROW EXECUTE FUNCTION xorj_kill_switch_record_event();

ALTER TABLE execution_jobs
    ADD COLUMN scoring_run_id varchar(64) REFERENCES scoring_runs(id) ON DELETE SET NULL,
    -- what woke the executor: trader_swap | ranking | price_move | periodic | start
    ADD COLUMN trigger        varchar(32) NOT NULL DEFAULT 'periodic',
    -- the planned legs, the weights and prices they came from, and every limit applied
    ADD COLUMN plan           jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- why the job ended as it did (a rejection by risk, a failure, cancelled by a kill switch)
    ADD COLUMN reason         text,
    ADD COLUMN finished_at    timestamptz;
CREATE INDEX execution_jobs_user_created_idx ON execution_jobs (user_id, created_at DESC);

CREATE INDEX alerts_subject_created_idx ON alerts (subject, created_at DESC);
