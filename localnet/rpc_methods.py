"""The JSON-RPC method table: params validated the validator's way, mapped onto ``Chain``, answered
in the validator's shapes.

Owns: one handler per Solana JSON-RPC method (and the ``localnet_*`` admin methods, present only
when the node runs with ``--admin``), the params grammar of each, the JSON shapes of accounts,
transactions (json, jsonParsed, base64, base58), statuses and contexts, and ``RpcError`` with the
validator's codes and messages. Shapes are checked in the tests against solders' own response
parsers (``solders.rpc.responses.*.from_json``) and solana-py's ``Client``.

Handlers are synchronous (the chain is), take the request's ``params`` and return the ``result``
value; anything wrong with a request is an ``RpcError``. Framing (HTTP, batches, parse errors)
is ``rpc_server``'s.

May import: the standard library, attrs, solders, localnet.chain, localnet.token_state,
localnet.instruction_parser, localnet.base58.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs
from solders.account import Account
from solders.hash import Hash
from solders.message import Message, MessageV0, from_bytes_versioned
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from localnet.base58 import b58decode, b58encode
from localnet.chain import (
    Chain,
    Commitment,
    Faults,
    InvalidAdminRequest,
    LandedTransaction,
    PreflightFailure,
    SignatureVerificationFailure,
    SimulationResult,
    TokenBalance,
    describe_transaction_error,
    is_writable,
)
from localnet.instruction_parser import MEMO_PROGRAM_ID, parse_instruction
from localnet.token_state import (
    TOKEN_PROGRAM_ID,
    TOKEN_PROGRAMS,
    mint_json_parsed,
    parse_mint,
    parse_token_account,
    token_account_json_parsed,
    ui_token_amount,
)

__all__ = [
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "METHOD_NOT_FOUND",
    "PARSE_ERROR",
    "MethodTable",
    "RpcError",
    "build_method_table",
]

PARSE_ERROR: Final = -32700
INVALID_REQUEST: Final = -32600
METHOD_NOT_FOUND: Final = -32601
INVALID_PARAMS: Final = -32602
INTERNAL_ERROR: Final = -32603
SEND_TRANSACTION_PREFLIGHT_FAILURE: Final = -32002
TRANSACTION_SIGNATURE_VERIFICATION_FAILURE: Final = -32003
UNSUPPORTED_TRANSACTION_VERSION: Final = -32015
MIN_CONTEXT_SLOT_NOT_REACHED: Final = -32016

SOLANA_CORE_VERSION: Final = "2.1.21"
FEATURE_SET: Final = 1416569292
MAX_SIGNATURE_STATUSES: Final = 256
MAX_MULTIPLE_ACCOUNTS: Final = 100
MAX_SIGNATURES_FOR_ADDRESS: Final = 1000
U64_MAX: Final = 2**64 - 1

Params = Any  # whatever JSON the request carried under "params"
Handler = Callable[[Chain, Params], object]
MethodTable = Mapping[str, Handler]


@attrs.frozen
class RpcError(Exception):
    """A JSON-RPC error answer."""

    code: int
    message: str
    data: object = None

    def as_json(self) -> dict[str, object]:
        error: dict[str, object] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


def _invalid(message: str) -> RpcError:
    return RpcError(INVALID_PARAMS, message)


# -- params --------------------------------------------------------------------------------------


def _positional(params: Params, required: int, maximum: int) -> list[Any]:
    if params is None:
        params = []
    if not isinstance(params, list):
        raise _invalid("Invalid params: expected an array of parameters")
    if len(params) < required:
        raise _invalid(f"Invalid params: expected at least {required} parameter(s), got {len(params)}")
    if len(params) > maximum:
        raise _invalid(f"Invalid params: expected at most {maximum} parameter(s), got {len(params)}")
    return params + [None] * (maximum - len(params))


def _config(value: object) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _invalid("Invalid params: the configuration must be an object")
    return value


def _pubkey(value: object) -> Pubkey:
    if not isinstance(value, str):
        raise _invalid("Invalid param: expected a base-58 public key string")
    try:
        return Pubkey.from_string(value)
    except ValueError as e:
        raise _invalid(f"Invalid param: {e}") from e


def _signature(value: object) -> Signature:
    if not isinstance(value, str):
        raise _invalid("Invalid param: expected a base-58 signature string")
    try:
        return Signature.from_string(value)
    except ValueError as e:
        raise _invalid(f"Invalid param: {e}") from e


def _uint(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value > U64_MAX:
        raise _invalid(f"Invalid params: {what} must be an unsigned integer")
    return value


_COMMITMENTS: Final = {
    "processed": Commitment.PROCESSED,
    "recent": Commitment.PROCESSED,
    "confirmed": Commitment.CONFIRMED,
    "single": Commitment.CONFIRMED,
    "singleGossip": Commitment.CONFIRMED,
    "finalized": Commitment.FINALIZED,
    "max": Commitment.FINALIZED,
    "root": Commitment.FINALIZED,
}


def _commitment_at(chain: Chain, config: Mapping[str, Any]) -> Commitment:
    """The request's commitment (finalized unless given), refusing a ``minContextSlot`` not reached."""
    commitment = _commitment(config)
    min_context_slot = config.get("minContextSlot")
    if min_context_slot is not None:
        context_slot = chain.slot_at(commitment)
        if _uint(min_context_slot, "minContextSlot") > context_slot:
            raise RpcError(
                MIN_CONTEXT_SLOT_NOT_REACHED,
                "Minimum context slot has not been reached",
                {"contextSlot": context_slot},
            )
    return commitment


def _commitment(config: Mapping[str, Any], default: Commitment = Commitment.FINALIZED) -> Commitment:
    name = config.get("commitment")
    if name is None:
        return default
    commitment = _COMMITMENTS.get(name) if isinstance(name, str) else None
    if commitment is None:
        raise _invalid(f"Invalid params: unknown commitment {name!r}")
    return commitment


def _at_least_confirmed(commitment: Commitment) -> Commitment:
    if commitment < Commitment.CONFIRMED:
        raise _invalid("Method does not support commitment below `confirmed`")
    return commitment


def _context(chain: Chain, commitment: Commitment = Commitment.PROCESSED) -> dict[str, object]:
    return {"apiVersion": SOLANA_CORE_VERSION, "slot": chain.slot_at(commitment)}


def _with_context(
    chain: Chain, value: object, commitment: Commitment = Commitment.PROCESSED
) -> dict[str, object]:
    return {"context": _context(chain, commitment), "value": value}


# -- accounts ------------------------------------------------------------------------------------


def _account_encoding(config: Mapping[str, Any]) -> str:
    encoding = config.get("encoding", "binary")
    if encoding not in ("binary", "base58", "base64", "jsonParsed"):
        raise _invalid(f"Invalid params: unsupported account encoding {encoding!r}")
    return str(encoding)


def _data_slice(config: Mapping[str, Any], data: bytes) -> bytes:
    window = config.get("dataSlice")
    if window is None:
        return data
    if not isinstance(window, dict):
        raise _invalid("Invalid params: dataSlice must be an object")
    offset = _uint(window.get("offset"), "dataSlice.offset")
    length = _uint(window.get("length"), "dataSlice.length")
    return data[offset : offset + length]


def _json_parsed_data(chain: Chain, account: Account) -> object | None:
    data = bytes(account.data)
    program = "spl-token" if account.owner == TOKEN_PROGRAM_ID else "spl-token-2022"
    token = parse_token_account(account.owner, data)
    if token is not None:
        decimals = chain.mint_decimals(token.mint)
        if decimals is None:
            return None
        return {"parsed": token_account_json_parsed(token, decimals), "program": program, "space": len(data)}
    mint = parse_mint(account.owner, data)
    if mint is not None:
        return {"parsed": mint_json_parsed(mint), "program": program, "space": len(data)}
    return None


def _encode_account(chain: Chain, account: Account | None, config: Mapping[str, Any]) -> object:
    if account is None:
        return None
    encoding = _account_encoding(config)
    data = bytes(account.data)
    encoded: object = None
    if encoding == "jsonParsed":
        encoded = _json_parsed_data(chain, account)
    if encoded is None:
        sliced = _data_slice(config, data)
        if encoding == "binary":
            encoded = b58encode(sliced)
        elif encoding == "base58":
            encoded = [b58encode(sliced), "base58"]
        else:
            encoded = [base64.b64encode(sliced).decode(), "base64"]
    return {
        "data": encoded,
        "executable": bool(account.executable),
        "lamports": int(account.lamports),
        "owner": str(account.owner),
        "rentEpoch": int(account.rent_epoch),
        "space": len(data),
    }


def get_account_info(chain: Chain, params: Params) -> object:
    address, config = _positional(params, 1, 2)
    cfg = _config(config)
    commitment = _commitment_at(chain, cfg)
    return _with_context(chain, _encode_account(chain, chain.get_account(_pubkey(address)), cfg), commitment)


def get_multiple_accounts(chain: Chain, params: Params) -> object:
    addresses, config = _positional(params, 1, 2)
    if not isinstance(addresses, list):
        raise _invalid("Invalid params: expected an array of public keys")
    if len(addresses) > MAX_MULTIPLE_ACCOUNTS:
        raise _invalid(f"Too many inputs provided; max {MAX_MULTIPLE_ACCOUNTS}")
    cfg = _config(config)
    commitment = _commitment_at(chain, cfg)
    keys = [_pubkey(address) for address in addresses]
    return _with_context(
        chain, [_encode_account(chain, chain.get_account(key), cfg) for key in keys], commitment
    )


def get_balance(chain: Chain, params: Params) -> object:
    address, config = _positional(params, 1, 2)
    commitment = _commitment_at(chain, _config(config))
    return _with_context(chain, chain.balance(_pubkey(address)), commitment)


def get_token_account_balance(chain: Chain, params: Params) -> object:
    address, config = _positional(params, 1, 2)
    commitment = _commitment_at(chain, _config(config))
    account = chain.get_account(_pubkey(address))
    token = None if account is None else parse_token_account(account.owner, bytes(account.data))
    if token is None:
        raise _invalid("Invalid param: not a Token account")
    decimals = chain.mint_decimals(token.mint)
    if decimals is None:
        raise _invalid("Invalid param: could not find mint")
    return _with_context(chain, ui_token_amount(token.amount, decimals), commitment)


def get_token_accounts_by_owner(chain: Chain, params: Params) -> object:
    owner_text, selector, config = _positional(params, 2, 3)
    owner = _pubkey(owner_text)
    if not isinstance(selector, dict) or len(selector) != 1 or not ({"mint", "programId"} & selector.keys()):
        raise _invalid('Invalid params: expected {"mint": ...} or {"programId": ...}')
    cfg = _config(config)
    commitment = _commitment_at(chain, cfg)
    mint: Pubkey | None = None
    if "mint" in selector:
        mint = _pubkey(selector["mint"])
        mint_account = chain.get_account(mint)
        if mint_account is None or mint_account.owner not in TOKEN_PROGRAMS:
            raise _invalid("Invalid param: could not find mint")
        programs = [mint_account.owner]
    else:
        program = _pubkey(selector["programId"])
        if program not in TOKEN_PROGRAMS:
            raise _invalid("Invalid param: unrecognized Token program id")
        programs = [program]
    found: list[object] = []
    for program in programs:
        for address, account in chain.program_accounts(program):
            token = parse_token_account(account.owner, bytes(account.data))
            if token is None or token.owner != owner or (mint is not None and token.mint != mint):
                continue
            found.append({"account": _encode_account(chain, account, cfg), "pubkey": str(address)})
    return _with_context(chain, found, commitment)


def get_minimum_balance_for_rent_exemption(chain: Chain, params: Params) -> object:
    size, _config_value = _positional(params, 1, 2)
    return chain.minimum_balance_for_rent_exemption(_uint(size, "data length"))


# -- slots, blockhashes, node --------------------------------------------------------------------


def get_health(chain: Chain, params: Params) -> object:
    _positional(params, 0, 0)
    return "ok"


def get_version(chain: Chain, params: Params) -> object:
    _positional(params, 0, 0)
    return {"feature-set": FEATURE_SET, "solana-core": SOLANA_CORE_VERSION}


def get_genesis_hash(chain: Chain, params: Params) -> object:
    _positional(params, 0, 0)
    return str(chain.genesis_hash)


def get_slot(chain: Chain, params: Params) -> object:
    (config,) = _positional(params, 0, 1)
    return chain.slot_at(_commitment_at(chain, _config(config)))


def get_block_height(chain: Chain, params: Params) -> object:
    (config,) = _positional(params, 0, 1)
    return chain.block_height(_commitment_at(chain, _config(config)))


def get_epoch_info(chain: Chain, params: Params) -> object:
    (config,) = _positional(params, 0, 1)
    slot = chain.slot_at(_commitment_at(chain, _config(config)))
    slots_per_epoch = 432_000
    return {
        "absoluteSlot": slot,
        "blockHeight": chain.block_height(_commitment_at(chain, _config(config))),
        "epoch": slot // slots_per_epoch,
        "slotIndex": slot % slots_per_epoch,
        "slotsInEpoch": slots_per_epoch,
        "transactionCount": chain.transaction_count,
    }


def get_latest_blockhash(chain: Chain, params: Params) -> object:
    (config,) = _positional(params, 0, 1)
    commitment = _commitment_at(chain, _config(config))
    blockhash, last_valid = chain.latest_blockhash(commitment)
    return _with_context(chain, {"blockhash": str(blockhash), "lastValidBlockHeight": last_valid}, commitment)


def is_blockhash_valid(chain: Chain, params: Params) -> object:
    text, config = _positional(params, 1, 2)
    commitment = _commitment_at(chain, _config(config))
    if not isinstance(text, str):
        raise _invalid("Invalid param: expected a base-58 blockhash string")
    try:
        blockhash = Hash.from_string(text)
    except ValueError as e:
        raise _invalid(f"Invalid param: {e}") from e
    return _with_context(chain, chain.blockhash_slot(blockhash) is not None, commitment)


def get_fee_for_message(chain: Chain, params: Params) -> object:
    text, config = _positional(params, 1, 2)
    commitment = _commitment_at(chain, _config(config))
    if not isinstance(text, str):
        raise _invalid("Invalid params: expected a base-64 message")
    try:
        message = from_bytes_versioned(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError) as e:
        raise _invalid(f"invalid message: {e}") from e
    if not isinstance(message, Message | MessageV0):
        raise _invalid("invalid message: unsupported message version")
    return _with_context(chain, chain.fee_for_message(message), commitment)


# -- transactions --------------------------------------------------------------------------------


def _status_json(err: object) -> dict[str, object]:
    return {"Ok": None} if err is None else {"Err": err}


def _token_balance_json(balance: TokenBalance) -> dict[str, object]:
    return {
        "accountIndex": balance.account_index,
        "mint": str(balance.mint),
        "owner": str(balance.owner),
        "programId": str(balance.program_id),
        "uiTokenAmount": ui_token_amount(balance.amount, balance.decimals),
    }


def _memo_of(record: LandedTransaction) -> str | None:
    message = record.transaction.message
    keys = list(message.account_keys)
    memos = [
        bytes(ix.data).decode("utf-8", "replace")
        for ix in message.instructions
        if keys[ix.program_id_index] == MEMO_PROGRAM_ID
    ]
    if not memos:
        return None
    return "; ".join(f"[{len(memo)}] {memo}" for memo in memos)


def _version(tx: VersionedTransaction) -> object:
    return "legacy" if isinstance(tx.message, Message) else 0


def _raw_message_json(message: Message | MessageV0) -> dict[str, object]:
    header = message.header
    body: dict[str, object] = {
        "accountKeys": [str(key) for key in message.account_keys],
        "header": {
            "numReadonlySignedAccounts": header.num_readonly_signed_accounts,
            "numReadonlyUnsignedAccounts": header.num_readonly_unsigned_accounts,
            "numRequiredSignatures": header.num_required_signatures,
        },
        "instructions": [
            {
                "accounts": list(ix.accounts),
                "data": b58encode(bytes(ix.data)),
                "programIdIndex": ix.program_id_index,
                "stackHeight": None,
            }
            for ix in message.instructions
        ],
        "recentBlockhash": str(message.recent_blockhash),
    }
    if isinstance(message, MessageV0):
        body["addressTableLookups"] = [
            {
                "accountKey": str(lookup.account_key),
                "readonlyIndexes": list(lookup.readonly_indexes),
                "writableIndexes": list(lookup.writable_indexes),
            }
            for lookup in message.address_table_lookups
        ]
    return body


def _parsed_message_json(message: Message | MessageV0) -> dict[str, object]:
    keys = list(message.account_keys)
    body: dict[str, object] = {
        "accountKeys": [
            {
                "pubkey": str(key),
                "signer": message.is_signer(index),
                "source": "transaction",
                "writable": is_writable(message, index),
            }
            for index, key in enumerate(keys)
        ],
        "instructions": [
            parse_instruction(
                keys[ix.program_id_index], [keys[i] for i in bytes(ix.accounts)], bytes(ix.data), None
            )
            for ix in message.instructions
        ],
        "recentBlockhash": str(message.recent_blockhash),
    }
    if isinstance(message, MessageV0):
        body["addressTableLookups"] = _raw_message_json(message)["addressTableLookups"]
    return body


def _inner_instructions_json(record: LandedTransaction, parsed: bool) -> list[object]:
    keys = list(record.transaction.message.account_keys)
    groups: list[object] = []
    for index, inner in enumerate(record.meta.inner_instructions()):
        if not inner:
            continue
        rendered: list[object] = []
        for item in inner:
            ix = item.instruction()
            if parsed:
                accounts = [keys[i] for i in bytes(ix.accounts)]
                rendered.append(
                    parse_instruction(
                        keys[ix.program_id_index], accounts, bytes(ix.data), item.stack_height()
                    )
                )
            else:
                rendered.append(
                    {
                        "accounts": list(bytes(ix.accounts)),
                        "data": b58encode(bytes(ix.data)),
                        "programIdIndex": ix.program_id_index,
                        "stackHeight": item.stack_height(),
                    }
                )
        groups.append({"index": index, "instructions": rendered})
    return groups


def _return_data_json(program_id: Pubkey, data: bytes) -> dict[str, object]:
    return {"data": [base64.b64encode(data).decode(), "base64"], "programId": str(program_id)}


def _meta_json(record: LandedTransaction, parsed: bool) -> dict[str, object]:
    meta: dict[str, object] = {
        "computeUnitsConsumed": record.compute_units,
        "err": record.err,
        "fee": record.fee,
        "innerInstructions": _inner_instructions_json(record, parsed),
        "logMessages": list(record.logs),
        "postBalances": list(record.post_balances),
        "postTokenBalances": [_token_balance_json(b) for b in record.post_token_balances],
        "preBalances": list(record.pre_balances),
        "preTokenBalances": [_token_balance_json(b) for b in record.pre_token_balances],
        "rewards": [],
        "status": _status_json(record.err),
    }
    if not parsed:
        meta["loadedAddresses"] = {"readonly": [], "writable": []}
    return_data = record.meta.return_data()
    if bytes(return_data.data):
        meta["returnData"] = _return_data_json(return_data.program_id, bytes(return_data.data))
    return meta


def _transaction_json(tx: VersionedTransaction, encoding: str) -> object:
    if encoding == "base64":
        return [base64.b64encode(bytes(tx)).decode(), "base64"]
    if encoding == "base58":
        return [b58encode(bytes(tx)), "base58"]
    message = tx.message
    assert isinstance(message, Message | MessageV0)  # refused at the door otherwise
    body = _parsed_message_json(message) if encoding == "jsonParsed" else _raw_message_json(message)
    return {"message": body, "signatures": [str(signature) for signature in tx.signatures]}


def get_transaction(chain: Chain, params: Params) -> object:
    signature_text, config = _positional(params, 1, 2)
    cfg = {"encoding": config} if isinstance(config, str) else _config(config)
    signature = _signature(signature_text)
    encoding = cfg.get("encoding") or "json"
    if encoding == "binary":
        encoding = "base58"
    if encoding not in ("json", "jsonParsed", "base64", "base58"):
        raise _invalid(f"Invalid params: unsupported transaction encoding {encoding!r}")
    commitment = _at_least_confirmed(_commitment_at(chain, cfg))
    max_version = cfg.get("maxSupportedTransactionVersion")
    if max_version is not None and max_version != 0:
        raise _invalid(f"Invalid params: unsupported maxSupportedTransactionVersion {max_version!r}")
    record = chain.transaction(signature)
    if record is None or chain.commitment_of(record.slot) < commitment:
        return None
    version = _version(record.transaction)
    if version != "legacy" and max_version is None:
        raise RpcError(
            UNSUPPORTED_TRANSACTION_VERSION,
            f"Transaction version ({version}) is not supported by the requesting client. Please try the "
            'request again with the following configuration parameter: "maxSupportedTransactionVersion": 0',
        )
    result: dict[str, object] = {
        "blockTime": record.block_time,
        "meta": _meta_json(record, encoding == "jsonParsed"),
        "slot": record.slot,
        "transaction": _transaction_json(record.transaction, encoding),
    }
    if max_version is not None:
        result["version"] = version
    return result


def get_signatures_for_address(chain: Chain, params: Params) -> object:
    address, config = _positional(params, 1, 2)
    cfg = _config(config)
    limit = cfg.get("limit")
    limit = MAX_SIGNATURES_FOR_ADDRESS if limit is None else _uint(limit, "limit")
    if not 1 <= limit <= MAX_SIGNATURES_FOR_ADDRESS:
        raise _invalid(f"Invalid limit; max {MAX_SIGNATURES_FOR_ADDRESS}")
    before = cfg.get("before")
    until = cfg.get("until")
    records = chain.signatures_for_address(
        _pubkey(address),
        before=None if before is None else _signature(before),
        until=None if until is None else _signature(until),
        limit=limit,
        commitment=_at_least_confirmed(_commitment_at(chain, cfg)),
    )
    return [
        {
            "blockTime": record.block_time,
            "confirmationStatus": chain.commitment_of(record.slot).rpc_name,
            "err": record.err,
            "memo": _memo_of(record),
            "signature": str(record.signature),
            "slot": record.slot,
        }
        for record in records
    ]


def get_signature_statuses(chain: Chain, params: Params) -> object:
    signatures, config = _positional(params, 1, 2)
    if not isinstance(signatures, list):
        raise _invalid("Invalid params: expected an array of signatures")
    if len(signatures) > MAX_SIGNATURE_STATUSES:
        raise _invalid(f"Too many inputs provided; max {MAX_SIGNATURE_STATUSES}")
    search = bool(_config(config).get("searchTransactionHistory", False))
    values: list[object] = []
    for text in signatures:
        record = chain.status(_signature(text), search_history=search)
        if record is None:
            values.append(None)
            continue
        commitment = chain.commitment_of(record.slot)
        values.append(
            {
                "confirmationStatus": commitment.rpc_name,
                "confirmations": None if commitment == Commitment.FINALIZED else chain.slot - record.slot,
                "err": record.err,
                "slot": record.slot,
                "status": _status_json(record.err),
            }
        )
    return _with_context(chain, values)


def _decode_transaction(text: object, encoding: object) -> VersionedTransaction:
    if not isinstance(text, str):
        raise _invalid("Invalid params: expected an encoded transaction string")
    if encoding in (None, "base58"):
        try:
            raw = b58decode(text)
        except ValueError as e:
            raise _invalid(f"invalid base58 encoding: {e}") from e
    elif encoding == "base64":
        try:
            raw = base64.b64decode(text, validate=True)
        except binascii.Error as e:
            raise _invalid(f"invalid base64 encoding: {e}") from e
    else:
        raise _invalid(f"unsupported encoding: {encoding}. Supported encodings: base58, base64")
    try:
        tx = VersionedTransaction.from_bytes(raw)
    except ValueError as e:
        raise _invalid(
            f"failed to deserialize solana_sdk::transaction::versioned::VersionedTransaction: {e}"
        ) from e
    if not isinstance(tx.message, Message | MessageV0):
        raise _invalid("invalid transaction: unsupported transaction version")
    try:
        tx.sanitize()
    except ValueError as e:
        raise _invalid(f"invalid transaction: {e}") from e
    return tx


def _simulation_json(simulation: SimulationResult, replacement: object = None) -> dict[str, object]:
    return {
        "accounts": None,
        "err": simulation.err,
        "innerInstructions": None,
        "logs": list(simulation.logs),
        "replacementBlockhash": replacement,
        "returnData": None
        if simulation.return_data is None
        else _return_data_json(simulation.return_data[0], simulation.return_data[1]),
        "unitsConsumed": simulation.units_consumed,
    }


def send_transaction(chain: Chain, params: Params) -> object:
    text, config = _positional(params, 1, 2)
    cfg = _config(config)
    tx = _decode_transaction(text, cfg.get("encoding"))
    preflight = cfg.get("preflightCommitment")
    _commitment_at(chain, {"commitment": preflight, "minContextSlot": cfg.get("minContextSlot")})
    try:
        outcome = chain.submit(tx, skip_preflight=bool(cfg.get("skipPreflight", False)))
    except SignatureVerificationFailure as e:
        raise RpcError(TRANSACTION_SIGNATURE_VERIFICATION_FAILURE, str(e)) from e
    except PreflightFailure as e:
        raise RpcError(SEND_TRANSACTION_PREFLIGHT_FAILURE, e.message, _simulation_json(e.simulation)) from e
    if outcome.error_after_landing:
        raise RpcError(INTERNAL_ERROR, "Internal error (localnet fault: the transaction was accepted)")
    return str(outcome.signature)


def simulate_transaction(chain: Chain, params: Params) -> object:
    text, config = _positional(params, 1, 2)
    cfg = _config(config)
    tx = _decode_transaction(text, cfg.get("encoding"))
    sig_verify = bool(cfg.get("sigVerify", False))
    replace = bool(cfg.get("replaceRecentBlockhash", False))
    if sig_verify and replace:
        raise _invalid("sigVerify may not be used with replaceRecentBlockhash")
    commitment = _commitment_at(chain, cfg)
    try:
        simulation = chain.simulate(tx, sig_verify=sig_verify, replace_blockhash=replace)
    except SignatureVerificationFailure as e:
        raise RpcError(TRANSACTION_SIGNATURE_VERIFICATION_FAILURE, str(e)) from e
    replacement: object = None
    if replace:
        blockhash, last_valid = chain.latest_blockhash()
        replacement = {"blockhash": str(blockhash), "lastValidBlockHeight": last_valid}
    return _with_context(chain, _simulation_json(simulation, replacement), commitment)


def request_airdrop(chain: Chain, params: Params) -> object:
    address, lamports, _config_value = _positional(params, 2, 3)
    landed = chain.airdrop(_pubkey(address), _uint(lamports, "lamports"))
    if landed.err is not None:
        # e.g. fewer lamports than rent exemption to a new account; the faucet's failed transfer
        # is on chain (history shows it), the caller is told plainly
        raise RpcError(INTERNAL_ERROR, f"airdrop request failed: {describe_transaction_error(landed.err)}")
    return str(landed.signature)


# -- admin ---------------------------------------------------------------------------------------


def localnet_create_mint(chain: Chain, params: Params) -> object:
    symbol, decimals = _positional(params, 2, 2)
    if not isinstance(symbol, str) or not symbol:
        raise _invalid("Invalid params: symbol must be a non-empty string")
    if _uint(decimals, "decimals") > 18:
        raise _invalid("Invalid params: decimals must be at most 18")
    try:
        return str(chain.create_mint(symbol, decimals).mint)
    except InvalidAdminRequest as e:
        raise _invalid(str(e)) from e


def localnet_mint(chain: Chain, params: Params) -> object:
    owner, mint, amount = _positional(params, 3, 3)
    try:
        landed = chain.mint_to_owner(_pubkey(owner), _pubkey(mint), _uint(amount, "amount"))
    except InvalidAdminRequest as e:
        raise _invalid(str(e)) from e
    if landed.err is not None:
        raise RpcError(INTERNAL_ERROR, f"mint transaction {landed.signature} failed: {landed.err}")
    return str(landed.signature)


def _faults_json(faults: Faults) -> dict[str, object]:
    return {
        "dropRate": faults.drop_rate,
        "landDelaySlots": faults.land_delay_slots,
        "errorAfterLanding": faults.error_after_landing,
    }


def localnet_set_faults(chain: Chain, params: Params) -> object:
    knobs = params[0] if isinstance(params, list) and len(params) == 1 else params
    if not isinstance(knobs, dict):
        raise _invalid("Invalid params: expected {dropRate, landDelaySlots, errorAfterLanding}")
    unknown = set(knobs) - {"dropRate", "landDelaySlots", "errorAfterLanding"}
    if unknown:
        raise _invalid(f"Invalid params: unknown fault knob(s) {sorted(unknown)}")
    current = chain.faults
    drop = knobs.get("dropRate", current.drop_rate)
    delay = knobs.get("landDelaySlots", current.land_delay_slots)
    error_after = knobs.get("errorAfterLanding", current.error_after_landing)
    if isinstance(drop, bool) or not isinstance(drop, int | float) or not 0.0 <= drop <= 1.0:
        raise _invalid("Invalid params: dropRate must be a number in [0, 1]")
    if not isinstance(error_after, bool):
        raise _invalid("Invalid params: errorAfterLanding must be a boolean")
    chain.faults = Faults(float(drop), _uint(delay, "landDelaySlots"), error_after)
    return _faults_json(chain.faults)


def localnet_get_faults(chain: Chain, params: Params) -> object:
    _positional(params, 0, 0)
    return _faults_json(chain.faults)


def localnet_warp_slots(chain: Chain, params: Params) -> object:
    (count,) = _positional(params, 1, 1)
    if _uint(count, "slots") > 100_000:
        raise _invalid("Invalid params: warp at most 100000 slots at a time")
    return chain.warp_slots(count)


def localnet_set_clock(chain: Chain, params: Params) -> object:
    (unix_timestamp,) = _positional(params, 1, 1)
    chain.set_clock_offset(_uint(unix_timestamp, "unixTimestamp"))
    return chain.unix_timestamp


def localnet_get_mints(chain: Chain, params: Params) -> object:
    _positional(params, 0, 0)
    return {
        symbol: {"mint": str(info.mint), "decimals": info.decimals} for symbol, info in chain.mints.items()
    }


PUBLIC_METHODS: Final[Mapping[str, Handler]] = {
    "getAccountInfo": get_account_info,
    "getBalance": get_balance,
    "getBlockHeight": get_block_height,
    "getEpochInfo": get_epoch_info,
    "getFeeForMessage": get_fee_for_message,
    "getGenesisHash": get_genesis_hash,
    "getHealth": get_health,
    "getLatestBlockhash": get_latest_blockhash,
    "getMinimumBalanceForRentExemption": get_minimum_balance_for_rent_exemption,
    "getMultipleAccounts": get_multiple_accounts,
    "getSignatureStatuses": get_signature_statuses,
    "getSignaturesForAddress": get_signatures_for_address,
    "getSlot": get_slot,
    "getTokenAccountBalance": get_token_account_balance,
    "getTokenAccountsByOwner": get_token_accounts_by_owner,
    "getTransaction": get_transaction,
    "getVersion": get_version,
    "isBlockhashValid": is_blockhash_valid,
    "requestAirdrop": request_airdrop,
    "sendTransaction": send_transaction,
    "simulateTransaction": simulate_transaction,
}

ADMIN_METHODS: Final[Mapping[str, Handler]] = {
    "localnet_createMint": localnet_create_mint,
    "localnet_getFaults": localnet_get_faults,
    "localnet_getMints": localnet_get_mints,
    "localnet_mint": localnet_mint,
    "localnet_setClock": localnet_set_clock,
    "localnet_setFaults": localnet_set_faults,
    "localnet_warpSlots": localnet_warp_slots,
}


def build_method_table(*, admin: bool) -> MethodTable:
    """The methods this node answers; the admin methods exist only with ``--admin``."""
    table = dict(PUBLIC_METHODS)
    if admin:
        table.update(ADMIN_METHODS)
    return table
