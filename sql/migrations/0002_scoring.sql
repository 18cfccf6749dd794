-- 0002_scoring: what the scorer needs (DESIGN section 7, issue 5): the tracked trader wallets and
-- their paging cursor, the swaps ingested from their history, the price history that values
-- them, and every metric of a scoring run on `scoring_runs` / `trader_scores`.
-- Never edit after it has been applied anywhere; add a new numbered file instead.

-- A trader wallet the scorer follows. `newest_signature`/`newest_slot` is the incremental paging
-- cursor: the newest signature whose history is fully stored (getSignaturesForAddress `until`).
CREATE TABLE tracked_wallets (
    wallet            varchar(64) PRIMARY KEY,
    source            varchar(16) NOT NULL
                      CONSTRAINT tracked_wallets_source_check
                      CHECK (source IN ('config', 'ctl', 'manifest')),
    added_at          timestamptz NOT NULL DEFAULT now(),
    newest_signature  varchar(128),
    newest_slot       bigint CHECK (newest_slot IS NULL OR newest_slot >= 0),
    last_ingest_error text,
    last_ingested_at  timestamptz,
    CONSTRAINT tracked_wallets_cursor_check CHECK ((newest_signature IS NULL) = (newest_slot IS NULL))
);

-- One swap of one wallet, read off its own token balance deltas. The signature is the key, so
-- re-ingesting a transaction is a no-op (INSERT ... ON CONFLICT DO NOTHING).
CREATE TABLE swaps (
    signature      varchar(128) PRIMARY KEY,
    wallet         varchar(64) NOT NULL,
    slot           bigint NOT NULL CHECK (slot >= 0),
    block_time     timestamptz NOT NULL,
    sold_mint      varchar(64) NOT NULL,
    sold_amount    numeric(40, 0) NOT NULL CHECK (sold_amount > 0),
    sold_decimals  smallint NOT NULL CHECK (sold_decimals BETWEEN 0 AND 255),
    bought_mint    varchar(64) NOT NULL,
    bought_amount  numeric(40, 0) NOT NULL CHECK (bought_amount > 0),
    bought_decimals smallint NOT NULL CHECK (bought_decimals BETWEEN 0 AND 255),
    fee_lamports   bigint NOT NULL CHECK (fee_lamports >= 0),
    -- NULL while the swap cannot be valued: it is kept, excluded from the metrics, and counted.
    usd_value      numeric(30, 6) CHECK (usd_value IS NULL OR usd_value >= 0),
    fee_usd        numeric(30, 6) CHECK (fee_usd IS NULL OR fee_usd >= 0),
    ingested_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT swaps_two_mints_check CHECK (sold_mint <> bought_mint)
);
CREATE INDEX swaps_wallet_time_idx ON swaps (wallet, block_time, slot);
CREATE INDEX swaps_unvalued_idx ON swaps (wallet) WHERE usd_value IS NULL;

-- Price history (USD per whole token), written by the price feed; the scorer reads the latest
-- price at or before a swap's time.
CREATE TABLE token_prices (
    mint      varchar(64) NOT NULL,
    at        timestamptz NOT NULL,
    usd_price numeric(30, 12) NOT NULL CHECK (usd_price > 0),
    PRIMARY KEY (mint, at)
);

ALTER TABLE scoring_runs
    ADD COLUMN algorithm      varchar(8) NOT NULL DEFAULT 'v1'
                              CONSTRAINT scoring_runs_algorithm_check CHECK (algorithm IN ('v1', 'v2')),
    ADD COLUMN window_days    integer NOT NULL DEFAULT 90
                              CONSTRAINT scoring_runs_window_days_check CHECK (window_days > 0),
    ADD COLUMN started_at     timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN finished_at    timestamptz,
    ADD COLUMN wallets_total  integer NOT NULL DEFAULT 0 CHECK (wallets_total >= 0),
    ADD COLUMN wallets_ok     integer NOT NULL DEFAULT 0 CHECK (wallets_ok >= 0),
    ADD COLUMN wallets_failed integer NOT NULL DEFAULT 0 CHECK (wallets_failed >= 0),
    ADD COLUMN swaps_ingested integer NOT NULL DEFAULT 0 CHECK (swaps_ingested >= 0),
    ADD COLUMN transactions_fetched integer NOT NULL DEFAULT 0 CHECK (transactions_fetched >= 0),
    ADD COLUMN txs_skipped    jsonb NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN swaps_unvalued integer NOT NULL DEFAULT 0 CHECK (swaps_unvalued >= 0),
    ADD COLUMN error          text,
    ADD CONSTRAINT scoring_runs_finished_check CHECK ((status = 'RUNNING') = (finished_at IS NULL)),
    ADD CONSTRAINT scoring_runs_failed_has_error_check CHECK (status <> 'FAILED' OR error IS NOT NULL);
-- "The latest COMPLETED run" is what the executors and `xorj ctl rankings` read.
CREATE INDEX scoring_runs_completed_idx ON scoring_runs (finished_at DESC) WHERE status = 'COMPLETED';

ALTER TABLE trader_scores
    ADD COLUMN sharpe             double precision NOT NULL DEFAULT 0,
    ADD COLUMN sortino            double precision,
    ADD COLUMN volume_usd         numeric(30, 6) NOT NULL DEFAULT 0 CHECK (volume_usd >= 0),
    ADD COLUMN first_trade_at     timestamptz,
    ADD COLUMN last_trade_at      timestamptz,
    ADD COLUMN eligible           boolean NOT NULL DEFAULT false,
    ADD COLUMN eligibility_reason text NOT NULL DEFAULT '',
    ADD COLUMN rank               integer CHECK (rank IS NULL OR rank >= 1),
    ADD COLUMN algorithm          varchar(8) NOT NULL DEFAULT 'v1'
                                  CONSTRAINT trader_scores_algorithm_check CHECK (algorithm IN ('v1', 'v2')),
    ADD CONSTRAINT trader_scores_score_check CHECK (xorj_trust_score BETWEEN 0 AND 100),
    ADD CONSTRAINT trader_scores_win_rate_check CHECK (win_rate IS NULL OR win_rate BETWEEN 0 AND 100),
    ADD CONSTRAINT trader_scores_max_drawdown_check
        CHECK (max_drawdown IS NULL OR max_drawdown BETWEEN 0 AND 100),
    ADD CONSTRAINT trader_scores_trade_count_check CHECK (trade_count IS NULL OR trade_count >= 0),
    ADD CONSTRAINT trader_scores_run_rank_key UNIQUE (run_id, rank);
