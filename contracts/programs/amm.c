/* amm.c -- the local chain's swap venue: constant-product pools with a fee.
 *
 * Owns: pools (PDA [b"pool", mint_a, mint_b], mint_a < mint_b bytewise so a pair has one pool),
 * whose two token accounts are owned by the pool PDA; `initialize_pool(fee_bps: u16)`,
 * `add_liquidity(amount_a: u64, amount_b: u64)`, `swap(amount_in: u64, minimum_amount_out: u64)`.
 * Anchor encodings: 8-byte sha256 discriminators, borsh arguments, `Pool` account discriminator.
 *
 * Design notes
 * - Reserves are the pool token accounts' balances, read at swap time: there is no second copy
 *   of the reserves to drift. Liquidity carries no LP shares (a local venue, not a product).
 * - Output rounds down (in the pool's favour); the wide maths is in u128.h.
 * - The swap's authority is whoever signs for the source account; when the vault program CPIs
 *   in, that is the vault PDA, whose signature the runtime carries into this call.
 */
#include "sol.h"
#include "u128.h"
#include "discriminators.h"

#define POOL_LEN 139 /* 8 disc + mint_a + mint_b + vault_a + vault_b + fee_bps u16 + bump u8 */
#define MAX_FEE_BPS 1000

#define AMM_INVALID_AMOUNT 6000
#define AMM_SLIPPAGE_EXCEEDED 6001
#define AMM_INVALID_POOL_ACCOUNT 6002
#define AMM_MATH_OVERFLOW 6003
#define AMM_INVALID_MINT_ORDER 6004
#define AMM_INVALID_FEE 6005
#define AMM_EMPTY_POOL 6006

/* Rent exemption for `space` bytes with the default rent (3480 lamports/byte-year, 2 years). */
static uint64_t rent_exempt(uint64_t space) { return (128 + space) * 3480 * 2; }

static bool key_less(const SolPubkey *a, const SolPubkey *b) {
  for (int i = 0; i < 32; i++) {
    if (a->x[i] != b->x[i]) return a->x[i] < b->x[i];
  }
  return false;
}

static uint64_t load_pool(const SolParameters *p, const SolAccountInfo *pool) {
  if (!pubkey_eq(pool->owner, p->program_id)) return ANCHOR_ACCOUNT_OWNED_BY_WRONG_PROGRAM;
  if (pool->data_len != POOL_LEN) return ANCHOR_ACCOUNT_DID_NOT_DESERIALIZE;
  if (read_u64(pool->data) != ACCOUNT_POOL) return ANCHOR_ACCOUNT_DISCRIMINATOR_MISMATCH;
  return 0;
}

static uint64_t initialize_pool(SolParameters *p) {
  if (p->ka_num < 7) return ANCHOR_ACCOUNT_NOT_ENOUGH_KEYS;
  if (p->data_len != 8 + 2) return ANCHOR_INSTRUCTION_DID_NOT_DESERIALIZE;
  SolAccountInfo *pool = &p->ka[0], *payer = &p->ka[1], *mint_a = &p->ka[2], *mint_b = &p->ka[3];
  SolAccountInfo *vault_a = &p->ka[4], *vault_b = &p->ka[5], *system = &p->ka[6];
  uint64_t fee_bps = read_u16(p->data + 8);
  if (fee_bps > MAX_FEE_BPS) return AMM_INVALID_FEE;
  if (!payer->is_signer) return ANCHOR_ACCOUNT_NOT_SIGNER;
  if (!pubkey_eq(system->key, &SYSTEM_PROGRAM_ID)) return ANCHOR_INVALID_PROGRAM_ID;
  if (!key_less(mint_a->key, mint_b->key)) return AMM_INVALID_MINT_ORDER;
  uint8_t bump;
  SolPubkey expected;
  SolSignerSeed seeds[4] = {{(const uint8_t *)"pool", 4}, {mint_a->key->x, 32}, {mint_b->key->x, 32},
                            {&bump, 1}};
  if (sol_try_find_program_address(seeds, 3, p->program_id, &expected, &bump) != 0)
    return ANCHOR_CONSTRAINT_SEEDS;
  if (!pubkey_eq(&expected, pool->key)) return ANCHOR_CONSTRAINT_SEEDS;
  if (!is_token_account(vault_a) || !is_token_account(vault_b)) return AMM_INVALID_POOL_ACCOUNT;
  if (!pubkey_eq(token_mint(vault_a), mint_a->key) || !pubkey_eq(token_mint(vault_b), mint_b->key))
    return ANCHOR_CONSTRAINT_TOKEN_MINT;
  if (!pubkey_eq(token_owner(vault_a), pool->key) || !pubkey_eq(token_owner(vault_b), pool->key))
    return ANCHOR_CONSTRAINT_TOKEN_OWNER;
  /* A delegate or close authority on a pool account would let someone else move the reserves. */
  if (read_u32(vault_a->data + 72) != 0 || read_u32(vault_b->data + 72) != 0 ||
      read_u32(vault_a->data + 129) != 0 || read_u32(vault_b->data + 129) != 0)
    return AMM_INVALID_POOL_ACCOUNT;

  /* System CreateAccount(lamports, space, owner), signed by the pool PDA. */
  uint8_t data[52];
  write_u32(data, 0);
  write_u64(data + 4, rent_exempt(POOL_LEN));
  write_u64(data + 12, POOL_LEN);
  copy_bytes(data + 20, p->program_id->x, 32);
  SolAccountMeta metas[2] = {{payer->key, true, true}, {pool->key, true, true}};
  SolInstruction ix = {system->key, metas, 2, data, 52};
  SolAccountInfo infos[2] = {*payer, *pool};
  SolSignerSeeds signer = {seeds, 4};
  uint64_t err = sol_invoke_signed_c(&ix, infos, 2, &signer, 1);
  if (err) return err;

  uint8_t *d = pool->data;
  write_u64(d, ACCOUNT_POOL);
  copy_bytes(d + 8, mint_a->key->x, 32);
  copy_bytes(d + 40, mint_b->key->x, 32);
  copy_bytes(d + 72, vault_a->key->x, 32);
  copy_bytes(d + 104, vault_b->key->x, 32);
  d[136] = (uint8_t)fee_bps;
  d[137] = (uint8_t)(fee_bps >> 8);
  d[138] = bump;
  return 0;
}

static uint64_t add_liquidity(SolParameters *p) {
  if (p->ka_num < 7) return ANCHOR_ACCOUNT_NOT_ENOUGH_KEYS;
  if (p->data_len != 8 + 16) return ANCHOR_INSTRUCTION_DID_NOT_DESERIALIZE;
  SolAccountInfo *pool = &p->ka[0], *provider = &p->ka[1], *provider_a = &p->ka[2], *provider_b = &p->ka[3];
  SolAccountInfo *vault_a = &p->ka[4], *vault_b = &p->ka[5], *token_program = &p->ka[6];
  uint64_t err = load_pool(p, pool);
  if (err) return err;
  if (!provider->is_signer) return ANCHOR_ACCOUNT_NOT_SIGNER;
  if (!pubkey_eq(token_program->key, &TOKEN_PROGRAM_ID)) return ANCHOR_INVALID_PROGRAM_ID;
  if (!bytes_eq(vault_a->key->x, pool->data + 72, 32) || !bytes_eq(vault_b->key->x, pool->data + 104, 32))
    return AMM_INVALID_POOL_ACCOUNT;
  uint64_t amount_a = read_u64(p->data + 8), amount_b = read_u64(p->data + 16);
  if (amount_a == 0 || amount_b == 0) return AMM_INVALID_AMOUNT;
  err = token_transfer(&(TokenTransfer){token_program, provider_a, vault_a, provider, amount_a, NULL, 0});
  if (err) return err;
  return token_transfer(&(TokenTransfer){token_program, provider_b, vault_b, provider, amount_b, NULL, 0});
}

static uint64_t swap(SolParameters *p) {
  if (p->ka_num < 7) return ANCHOR_ACCOUNT_NOT_ENOUGH_KEYS;
  if (p->data_len != 8 + 16) return ANCHOR_INSTRUCTION_DID_NOT_DESERIALIZE;
  SolAccountInfo *pool = &p->ka[0], *authority = &p->ka[1], *user_source = &p->ka[2];
  SolAccountInfo *user_destination = &p->ka[3], *pool_source = &p->ka[4], *pool_destination = &p->ka[5];
  SolAccountInfo *token_program = &p->ka[6];
  uint64_t err = load_pool(p, pool);
  if (err) return err;
  if (!authority->is_signer) return ANCHOR_ACCOUNT_NOT_SIGNER;
  if (!pubkey_eq(token_program->key, &TOKEN_PROGRAM_ID)) return ANCHOR_INVALID_PROGRAM_ID;
  const uint8_t *va = pool->data + 72, *vb = pool->data + 104;
  bool a_to_b = bytes_eq(pool_source->key->x, va, 32) && bytes_eq(pool_destination->key->x, vb, 32);
  bool b_to_a = bytes_eq(pool_source->key->x, vb, 32) && bytes_eq(pool_destination->key->x, va, 32);
  if (!a_to_b && !b_to_a) return AMM_INVALID_POOL_ACCOUNT;
  if (same_account(p, 2, 4) || same_account(p, 3, 5) || same_account(p, 2, 5) || same_account(p, 3, 4))
    return ANCHOR_CONSTRAINT_DUPLICATE_MUTABLE_ACCOUNT;
  uint64_t amount_in = read_u64(p->data + 8), minimum_amount_out = read_u64(p->data + 16);
  if (amount_in == 0) return AMM_INVALID_AMOUNT;
  uint64_t fee_bps = read_u16(pool->data + 136), amount_out = 0;
  int q = amm_quote(amount_in, token_amount(pool_source), token_amount(pool_destination), fee_bps, &amount_out);
  if (q == QUOTE_EMPTY_POOL) return AMM_EMPTY_POOL;
  if (q != QUOTE_OK) return AMM_MATH_OVERFLOW;
  if (amount_out == 0 || amount_out < minimum_amount_out) return AMM_SLIPPAGE_EXCEEDED;

  err = token_transfer(&(TokenTransfer){token_program, user_source, pool_source, authority, amount_in, NULL, 0});
  if (err) return err;
  uint8_t bump = pool->data[138];
  SolSignerSeed seeds[4] = {{(const uint8_t *)"pool", 4}, {pool->data + 8, 32}, {pool->data + 40, 32},
                            {&bump, 1}};
  SolSignerSeeds signer = {seeds, 4};
  return token_transfer(
      &(TokenTransfer){token_program, pool_destination, user_destination, pool, amount_out, &signer, 1});
}

uint64_t entrypoint(const uint8_t *input) {
  SolParameters params;
  if (!sol_deserialize(input, &params)) return ERROR_NOT_ENOUGH_ACCOUNT_KEYS;
  if (params.data_len < 8) return ANCHOR_INSTRUCTION_FALLBACK_NOT_FOUND;
  uint64_t tag = read_u64(params.data);
  if (tag == IX_SWAP) return swap(&params);
  if (tag == IX_ADD_LIQUIDITY) return add_liquidity(&params);
  if (tag == IX_INITIALIZE_POOL) return initialize_pool(&params);
  return ANCHOR_INSTRUCTION_FALLBACK_NOT_FOUND;
}
