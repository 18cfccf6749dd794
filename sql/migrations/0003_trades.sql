-- 0003_trades: what one bot_trade attempt needs beyond 0001's lifecycle columns (DESIGN section 6,
-- issue 6): the exact on-chain amounts in base units (what the vault instruction carries and what
-- its TradeExecuted event reports) and the structured details of a failure. The amounts are
-- nullable so that rows written before this migration (or by tools) stay valid; the trade store
-- always sets amount_in and minimum_amount_out, and amount_out with CONFIRMED.
-- Never edit after it has been applied anywhere; add a new numbered file instead.

ALTER TABLE trades
    -- amount_in in the input mint's base units (`amount` stays the human-scale decimal)
    ADD COLUMN amount_in          numeric(39, 0) CONSTRAINT trades_amount_in_check CHECK (amount_in IS NULL OR amount_in > 0),
    -- the least output the vault accepts; below it the program fails with SlippageExceeded
    ADD COLUMN minimum_amount_out numeric(39, 0) CONSTRAINT trades_minimum_amount_out_check
                                  CHECK (minimum_amount_out IS NULL OR minimum_amount_out >= 0),
    -- what the chain says was received (the TradeExecuted event), set with CONFIRMED
    ADD COLUMN amount_out         numeric(39, 0) CONSTRAINT trades_amount_out_check CHECK (amount_out IS NULL OR amount_out >= 0),
    ADD COLUMN failure_details    jsonb NOT NULL DEFAULT '{}'::jsonb;

CREATE INDEX trades_intent_idx ON trades (intent_id, attempt);
