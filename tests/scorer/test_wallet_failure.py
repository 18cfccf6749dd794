"""One wallet whose ingestion fails does not fail the run: it is marked, scored from what is stored,
and retried next run. The RPC provider is the stand-in mainnet node of the RPC tests (a real socket,
the validator's wire format), told to answer the next request with HTTP 500."""

from __future__ import annotations

from solders.keypair import Keypair

from actors import ask
from actors.ingestion import IngestSettings
from actors.rpc_client import RetryPolicy, RpcClient, RpcClientActor
from actors.scorer import ScoreNow, Scorer, ScorerSettings
from engine.postgres_gateway import PostgresGateway
from supervisors import ChildSpec, Supervisor
from tests.rpc.conftest import Fault, rpc_nodes
from tests.runtime.conftest import running


async def test_a_failing_wallet_is_marked_and_retried_while_the_run_completes(
    schema: PostgresGateway,
) -> None:
    db = schema
    wallets = sorted(str(Keypair().pubkey()) for _ in range(2))
    settings = ScorerSettings(
        interval_s=None, wallets=tuple((w, "config") for w in wallets), concurrency=1,
        ingest=IngestSettings(rpc_timeout_s=3.0, db_timeout_s=10.0), db_timeout_s=10.0)
    async with rpc_nodes("mainnet") as [server]:
        def client() -> RpcClient:
            return RpcClient(server.url, retry=RetryPolicy(retries=0), rate_per_s=1000.0, burst=100)

        tree = Supervisor([
            ChildSpec("rpc_client", lambda: RpcClientActor(client, probe_interval_s=60.0)),
            ChildSpec("scorer", lambda: Scorer(db, settings)),
        ])
        async with running(tree) as t:
            scorer = t.registry.ref("scorer")
            server.node.faults.append(Fault(status=500))
            first = await ask(scorer, ScoreNow(), timeout=30)

            assert first.status == "COMPLETED", first
            assert (first.wallets_total, first.wallets_ok, first.wallets_failed) == (2, 1, 1)
            marks = {r["wallet"]: r for r in await db.fetch("SELECT * FROM tracked_wallets", timeout=5)}
            failed = [w for w, r in marks.items() if r["last_ingest_error"] is not None]
            assert len(failed) == 1 and "HTTP 500" in marks[failed[0]]["last_ingest_error"]
            assert marks[failed[0]]["newest_signature"] is None  # its history will be read again
            assert await db.fetchval("SELECT count(*) FROM trader_scores WHERE run_id = $1",
                                     first.run_id, timeout=5) == 2  # both are scored and shown

            second = await ask(scorer, ScoreNow(), timeout=30)
            assert (second.status, second.wallets_failed) == ("COMPLETED", 0)
            assert await db.fetchval(
                """SELECT count(*) FROM tracked_wallets
                   WHERE last_ingest_error IS NULL AND newest_signature IS NOT NULL""",
                timeout=5) == 2
