/* vault.c -- the XORJ user vault: deposits under a canary cap, owner-only withdrawals, and trades
 * by a bot key that can swap the vault's tokens but never take them out.
 *
 * Owns: VaultAccount (PDA [b"vault", owner]) and VaultConfig (PDA [b"config"]); instructions
 * initialize_config, set_swap_programs, initialize_vault, deposit, withdraw, grant_bot_authority,
 * revoke_bot_authority, bot_trade, deactivate_vault. Anchor encodings throughout (discriminators,
 * borsh, `Program data:` events, Anchor's framework error numbers where Anchor would fail a
 * constraint), so standard Solana tooling can use contracts/idl/xorj_vault.json.
 *
 * Design note -- the swap-program allow-list
 *   bot_trade CPIs, signing as the vault PDA, into a swap program. The program is taken from the
 *   allow-list in VaultConfig, a PDA [b"config"] owned by this program, never from whatever the
 *   caller names. The config is created once by `initialize_config`, which only the program's
 *   upgrade authority can sign (checked against the upgradeable loader's ProgramData account), so
 *   nobody can front-run the deployment and install their own list; the same admin may replace
 *   the list with `set_swap_programs`. The list holds at most 8 ids and may not contain the
 *   System program, the Token program or this program (a "swap" that is really a token transfer
 *   would hand the bot the vault's signature). The config also names the USDC mint that deposits
 *   must use, so the canary cap counts one currency. Why an account and not ids compiled in: the
 *   local chain, devnet and mainnet deploy the AMM at different addresses, and the list must be
 *   changeable without redeploying the vault; the admin key is the upgrade authority, which could
 *   replace the program anyway, so the config adds no new trusted party.
 *
 * Design note -- what the bot key can do
 *   The bot signs bot_trade only. The vault checks its own input/output token accounts (authority
 *   = vault PDA, mints as named, distinct), refuses a route that passes any other token account
 *   the vault owns (the vault's signature must not reach a third account), measures both balances
 *   around the CPI and fails unless input spent <= amount_in (InvalidRouteData) and output rise >=
 *   minimum_amount_out (SlippageExceeded). Withdraw, deactivate and authority changes need the
 *   owner's signature. The vault PDA is owned by this program, so no CPI can debit its lamports.
 *   Residual risk, stated: the bot chooses minimum_amount_out, so it can trade up to amount_in at
 *   a bad price in a pool of an allow-listed venue (e.g. a pool it seeded itself); the engine's
 *   limits bound amount_in and the allow-list bounds the venues.
 *
 * Cumulative cap: total_deposited counts deposits and never decreases (withdrawals do not make
 * room), which is what "1,000 USDC cumulative per vault" in the canary means.
 */
#include "sol.h"
#include "discriminators.h"

#define VAULT_LEN 91 /* 8 + owner 32 + total u64 + Option<Pubkey> 33 + is_active + created_at i64 + bump */
#define MAX_SWAP_PROGRAMS 8
#define CONFIG_LEN (8 + 32 + 32 + 4 + 32 * MAX_SWAP_PROGRAMS + 1)
#define DEPOSIT_CAP 1000000000UL /* 1,000 USDC in base units (6 decimals) */
#define BOT_TRADE_FIXED_ACCOUNTS 9
#define TRADE_EVENT_LEN (8 + 32 * 4 + 8 * 4)

/* Program errors, from 6000 in the seed's order; new ones after. */
#define E_VAULT_INACTIVE 6000
#define E_INVALID_AMOUNT 6001
#define E_INSUFFICIENT_FUNDS 6002
#define E_UNAUTHORIZED_BOT 6003
#define E_OVERFLOW 6004
#define E_UNDERFLOW 6005
#define E_INVALID_ROUTE_DATA 6006
#define E_SLIPPAGE_EXCEEDED 6007
#define E_DEPOSIT_CAP_EXCEEDED 6008
#define E_UNAUTHORIZED_ADMIN 6009
#define E_SWAP_PROGRAM_NOT_ALLOWED 6010
#define E_INVALID_MINT 6011
#define E_INVALID_SWAP_PROGRAM_LIST 6012
#define E_ROUTE_TOUCHES_OTHER_VAULT_ACCOUNT 6013
#define E_VAULT_TOKEN_ACCOUNT_CHANGED 6014

typedef struct {
  SolPubkey owner;
  uint64_t total_deposited;
  bool has_bot;
  SolPubkey bot_authority;
  bool is_active;
  int64_t created_at;
  uint8_t bump;
} Vault;

typedef struct {
  SolPubkey admin;
  SolPubkey usdc_mint;
  uint32_t n_swap_programs;
  const uint8_t *swap_programs; /* n * 32 bytes inside the account data */
  uint8_t bump;
} Config;

static uint64_t rent_exempt(uint64_t space) { return (128 + space) * 3480 * 2; }

static int64_t now(void) {
  SolClock clock;
  sol_get_clock_sysvar(&clock);
  return clock.unix_timestamp;
}

/* ---- VaultAccount (borsh: Option is a tag byte then the value, so fields after it move) ---- */

static void write_vault(uint8_t *d, const Vault *v) {
  sol_memset_(d, 0, VAULT_LEN);
  write_u64(d, ACCOUNT_VAULT);
  uint8_t *p = d + 8;
  copy_bytes(p, v->owner.x, 32); p += 32;
  write_u64(p, v->total_deposited); p += 8;
  *p++ = v->has_bot ? 1 : 0;
  if (v->has_bot) { copy_bytes(p, v->bot_authority.x, 32); p += 32; }
  *p++ = v->is_active ? 1 : 0;
  write_u64(p, (uint64_t)v->created_at); p += 8;
  *p = v->bump;
}

/* Anchor's Account<VaultAccount> checks plus the seeds constraint. */
static uint64_t load_vault(const SolParameters *p, const SolAccountInfo *a, Vault *v) {
  if (!pubkey_eq(a->owner, p->program_id)) return ANCHOR_ACCOUNT_OWNED_BY_WRONG_PROGRAM;
  if (a->data_len < 8) return 3001; /* AccountDiscriminatorNotFound */
  if (read_u64(a->data) != ACCOUNT_VAULT) return ANCHOR_ACCOUNT_DISCRIMINATOR_MISMATCH;
  if (a->data_len != VAULT_LEN) return ANCHOR_ACCOUNT_DID_NOT_DESERIALIZE;
  const uint8_t *d = a->data + 8;
  copy_bytes(v->owner.x, d, 32); d += 32;
  v->total_deposited = read_u64(d); d += 8;
  if (*d > 1) return ANCHOR_ACCOUNT_DID_NOT_DESERIALIZE;
  v->has_bot = *d++ == 1;
  if (v->has_bot) { copy_bytes(v->bot_authority.x, d, 32); d += 32; }
  if (*d > 1) return ANCHOR_ACCOUNT_DID_NOT_DESERIALIZE;
  v->is_active = *d++ == 1;
  v->created_at = (int64_t)read_u64(d); d += 8;
  v->bump = *d;
  SolPubkey expected;
  SolSignerSeed seeds[3] = {{(const uint8_t *)"vault", 5}, {v->owner.x, 32}, {&v->bump, 1}};
  if (sol_create_program_address(seeds, 3, p->program_id, &expected) != 0) return ANCHOR_CONSTRAINT_SEEDS;
  if (!pubkey_eq(&expected, a->key)) return ANCHOR_CONSTRAINT_SEEDS;
  return 0;
}

/* The owner-only instructions share: vault is an initialized vault, owner signs, has_one owner. */
static uint64_t owner_checks(const SolParameters *p, Vault *v, bool vault_mut) {
  const SolAccountInfo *vault = &p->ka[0], *owner = &p->ka[1];
  uint64_t err = load_vault(p, vault, v);
  if (err) return err;
  if (vault_mut && !vault->is_writable) return ANCHOR_CONSTRAINT_MUT;
  if (!owner->is_signer) return ANCHOR_ACCOUNT_NOT_SIGNER;
  if (!pubkey_eq(&v->owner, owner->key)) return ANCHOR_CONSTRAINT_HAS_ONE;
  return 0;
}

/* ---- VaultConfig (borsh: admin, usdc_mint, Vec<Pubkey>, bump) ---- */

static uint64_t load_config(const SolParameters *p, const SolAccountInfo *a, Config *c) {
  if (!pubkey_eq(a->owner, p->program_id)) return ANCHOR_ACCOUNT_OWNED_BY_WRONG_PROGRAM;
  if (a->data_len != CONFIG_LEN) return ANCHOR_ACCOUNT_DID_NOT_DESERIALIZE;
  if (read_u64(a->data) != ACCOUNT_CONFIG) return ANCHOR_ACCOUNT_DISCRIMINATOR_MISMATCH;
  copy_bytes(c->admin.x, a->data + 8, 32);
  copy_bytes(c->usdc_mint.x, a->data + 40, 32);
  c->n_swap_programs = read_u32(a->data + 72);
  if (c->n_swap_programs > MAX_SWAP_PROGRAMS) return ANCHOR_ACCOUNT_DID_NOT_DESERIALIZE;
  c->swap_programs = a->data + 76;
  c->bump = a->data[76 + 32 * c->n_swap_programs];
  SolPubkey expected;
  SolSignerSeed seeds[2] = {{(const uint8_t *)"config", 6}, {&c->bump, 1}};
  if (sol_create_program_address(seeds, 2, p->program_id, &expected) != 0) return ANCHOR_CONSTRAINT_SEEDS;
  if (!pubkey_eq(&expected, a->key)) return ANCHOR_CONSTRAINT_SEEDS;
  return 0;
}

/* Owner 32..64, delegate option 72..108, close-authority option 129..165 of an SPL token account. */
#define TOKEN_AUTHORITIES_LEN (32 + 36 + 36)
static void token_authorities(const SolAccountInfo *a, uint8_t *out) {
  copy_bytes(out, a->data + 32, 32);
  copy_bytes(out + 32, a->data + 72, 36);
  copy_bytes(out + 68, a->data + 129, 36);
}

static bool swap_program_allowed(const Config *c, const SolPubkey *program) {
  for (uint32_t i = 0; i < c->n_swap_programs; i++)
    if (bytes_eq(c->swap_programs + 32 * i, program->x, 32)) return true;
  return false;
}

/* Validates a borsh Vec<Pubkey> at `data` (length `len` bytes remaining) and writes it to the
 * config's list. Returns an error or 0. */
static uint64_t store_swap_programs(const SolParameters *p, uint8_t *config_data, const uint8_t *data,
                                    uint64_t len, uint8_t bump) {
  if (len < 4) return ANCHOR_INSTRUCTION_DID_NOT_DESERIALIZE;
  uint32_t n = read_u32(data);
  if (len != 4 + 32 * (uint64_t)n) return ANCHOR_INSTRUCTION_DID_NOT_DESERIALIZE;
  if (n > MAX_SWAP_PROGRAMS) return E_INVALID_SWAP_PROGRAM_LIST;
  for (uint32_t i = 0; i < n; i++) {
    const SolPubkey *id = (const SolPubkey *)(data + 4 + 32 * i);
    if (pubkey_eq(id, &SYSTEM_PROGRAM_ID) || pubkey_eq(id, &TOKEN_PROGRAM_ID) || pubkey_eq(id, p->program_id))
      return E_INVALID_SWAP_PROGRAM_LIST;
  }
  sol_memset_(config_data + 72, 0, CONFIG_LEN - 72);
  copy_bytes(config_data + 72, data, len);
  config_data[72 + len] = bump;
  return 0;
}

/* Creates a PDA account owned by this program: CreateAccount, or -- when someone pre-funded the
 * address to block it -- Transfer the shortfall, Allocate and Assign, as Anchor's `init` does. */
static uint64_t create_pda(const SolParameters *p, const SolAccountInfo *payer, const SolAccountInfo *account,
                           const SolAccountInfo *system, const SolSignerSeeds *signer) {
  uint64_t space = read_u64(p->data) == IX_INITIALIZE_CONFIG ? CONFIG_LEN : VAULT_LEN;
  uint64_t needed = rent_exempt(space), err;
  uint8_t data[52];
  SolAccountMeta metas[2] = {{payer->key, true, true}, {account->key, true, true}};
  SolAccountInfo infos[2] = {*payer, *account};
  SolInstruction ix = {system->key, metas, 2, data, 52};
  if (*account->lamports == 0 || !pubkey_eq(account->owner, &SYSTEM_PROGRAM_ID)) {
    write_u32(data, 0);
    write_u64(data + 4, needed);
    write_u64(data + 12, space);
    copy_bytes(data + 20, p->program_id->x, 32);
    return sol_invoke_signed_c(&ix, infos, 2, signer, 1);
  }
  if (*account->lamports < needed) {
    write_u32(data, 2);
    write_u64(data + 4, needed - *account->lamports);
    ix.data_len = 12;
    err = sol_invoke_signed_c(&ix, infos, 2, signer, 1);
    if (err) return err;
  }
  SolAccountMeta one[1] = {{account->key, true, true}};
  ix.accounts = one;
  ix.account_len = 1;
  write_u32(data, 8); /* Allocate */
  write_u64(data + 4, space);
  ix.data_len = 12;
  err = sol_invoke_signed_c(&ix, infos + 1, 1, signer, 1);
  if (err) return err;
  write_u32(data, 1); /* Assign */
  copy_bytes(data + 4, p->program_id->x, 32);
  ix.data_len = 36;
  return sol_invoke_signed_c(&ix, infos + 1, 1, signer, 1);
}

/* ---- instructions ---- */

/* initialize_config(usdc_mint: Pubkey, swap_programs: Vec<Pubkey>)
 * accounts: config (w), admin (s, w), program_data, system_program */
static uint64_t initialize_config(SolParameters *p) {
  if (p->ka_num < 4) return ANCHOR_ACCOUNT_NOT_ENOUGH_KEYS;
  SolAccountInfo *config = &p->ka[0], *admin = &p->ka[1], *program_data = &p->ka[2], *system = &p->ka[3];
  if (p->data_len < 8 + 32 + 4) return ANCHOR_INSTRUCTION_DID_NOT_DESERIALIZE;
  if (!admin->is_signer) return ANCHOR_ACCOUNT_NOT_SIGNER;
  if (!config->is_writable) return ANCHOR_CONSTRAINT_MUT;
  if (!pubkey_eq(system->key, &SYSTEM_PROGRAM_ID)) return ANCHOR_INVALID_PROGRAM_ID;
  /* Only the upgrade authority recorded in this program's ProgramData may configure it. */
  SolPubkey expected;
  uint8_t pd_bump;
  SolSignerSeed pd_seeds[1] = {{p->program_id->x, 32}};
  if (sol_try_find_program_address(pd_seeds, 1, &BPF_LOADER_UPGRADEABLE_ID, &expected, &pd_bump) != 0 ||
      !pubkey_eq(&expected, program_data->key) || !pubkey_eq(program_data->owner, &BPF_LOADER_UPGRADEABLE_ID) ||
      program_data->data_len < 45 || read_u32(program_data->data) != 3)
    return ANCHOR_ACCOUNT_NOT_PROGRAM_DATA;
  if (program_data->data[12] != 1 || !bytes_eq(program_data->data + 13, admin->key->x, 32))
    return E_UNAUTHORIZED_ADMIN;
  uint8_t bump;
  SolSignerSeed seeds[2] = {{(const uint8_t *)"config", 6}, {&bump, 1}};
  if (sol_try_find_program_address(seeds, 1, p->program_id, &expected, &bump) != 0 ||
      !pubkey_eq(&expected, config->key))
    return ANCHOR_CONSTRAINT_SEEDS;
  SolSignerSeeds signer = {seeds, 2};
  uint64_t err = create_pda(p, admin, config, system, &signer);
  if (err) return err;
  write_u64(config->data, ACCOUNT_CONFIG);
  copy_bytes(config->data + 8, admin->key->x, 32);
  copy_bytes(config->data + 40, p->data + 8, 32);
  return store_swap_programs(p, config->data, p->data + 40, p->data_len - 40, bump);
}

/* set_swap_programs(swap_programs: Vec<Pubkey>); accounts: config (w), admin (s) */
static uint64_t set_swap_programs(SolParameters *p) {
  if (p->ka_num < 2) return ANCHOR_ACCOUNT_NOT_ENOUGH_KEYS;
  SolAccountInfo *config = &p->ka[0], *admin = &p->ka[1];
  Config c;
  uint64_t err = load_config(p, config, &c);
  if (err) return err;
  if (!config->is_writable) return ANCHOR_CONSTRAINT_MUT;
  if (!admin->is_signer) return ANCHOR_ACCOUNT_NOT_SIGNER;
  if (!pubkey_eq(&c.admin, admin->key)) return ANCHOR_CONSTRAINT_HAS_ONE;
  return store_swap_programs(p, config->data, p->data + 8, p->data_len - 8, c.bump);
}

/* initialize_vault(); accounts: vault (w), owner (s, w), system_program */
static uint64_t initialize_vault(SolParameters *p) {
  if (p->ka_num < 3) return ANCHOR_ACCOUNT_NOT_ENOUGH_KEYS;
  if (p->data_len != 8) return ANCHOR_INSTRUCTION_DID_NOT_DESERIALIZE;
  SolAccountInfo *vault = &p->ka[0], *owner = &p->ka[1], *system = &p->ka[2];
  if (!owner->is_signer) return ANCHOR_ACCOUNT_NOT_SIGNER;
  if (!vault->is_writable || !owner->is_writable) return ANCHOR_CONSTRAINT_MUT;
  if (!pubkey_eq(system->key, &SYSTEM_PROGRAM_ID)) return ANCHOR_INVALID_PROGRAM_ID;
  Vault v;
  SolPubkey expected;
  SolSignerSeed seeds[3] = {{(const uint8_t *)"vault", 5}, {owner->key->x, 32}, {&v.bump, 1}};
  if (sol_try_find_program_address(seeds, 2, p->program_id, &expected, &v.bump) != 0 ||
      !pubkey_eq(&expected, vault->key))
    return ANCHOR_CONSTRAINT_SEEDS;
  SolSignerSeeds signer = {seeds, 3};
  uint64_t err = create_pda(p, owner, vault, system, &signer);
  if (err) return err;
  copy_bytes(v.owner.x, owner->key->x, 32);
  v.total_deposited = 0;
  v.has_bot = false;
  v.is_active = true;
  v.created_at = now();
  write_vault(vault->data, &v);
  return 0;
}

/* The vault's own token account for `mint`: an initialized SPL account whose authority is the vault. */
static uint64_t check_vault_token_account(const SolAccountInfo *account, const SolAccountInfo *vault,
                                          const SolAccountInfo *mint) {
  if (!is_token_account(account)) return ANCHOR_ACCOUNT_OWNED_BY_WRONG_PROGRAM;
  if (!pubkey_eq(token_mint(account), mint->key)) return ANCHOR_CONSTRAINT_TOKEN_MINT;
  if (!pubkey_eq(token_owner(account), vault->key)) return ANCHOR_CONSTRAINT_TOKEN_OWNER;
  if (!account->is_writable) return ANCHOR_CONSTRAINT_MUT;
  return 0;
}

/* deposit(amount: u64); accounts: vault (w), owner (s), user_token (w), vault_token (w), mint,
 * token_program, config */
static uint64_t deposit(SolParameters *p) {
  if (p->ka_num < 7) return ANCHOR_ACCOUNT_NOT_ENOUGH_KEYS;
  if (p->data_len != 16) return ANCHOR_INSTRUCTION_DID_NOT_DESERIALIZE;
  SolAccountInfo *vault = &p->ka[0], *user_token = &p->ka[2], *vault_token = &p->ka[3];
  SolAccountInfo *mint = &p->ka[4], *token_program = &p->ka[5], *owner = &p->ka[1];
  Vault v;
  Config c;
  uint64_t err = owner_checks(p, &v, true);
  if (err) return err;
  if (!pubkey_eq(token_program->key, &TOKEN_PROGRAM_ID)) return ANCHOR_INVALID_PROGRAM_ID;
  if ((err = load_config(p, &p->ka[6], &c))) return err;
  if (!pubkey_eq(mint->key, &c.usdc_mint)) return E_INVALID_MINT;
  if (same_account(p, 2, 3)) return ANCHOR_CONSTRAINT_DUPLICATE_MUTABLE_ACCOUNT;
  if ((err = check_vault_token_account(vault_token, vault, mint))) return err;
  if (!v.is_active) return E_VAULT_INACTIVE;
  uint64_t amount = read_u64(p->data + 8);
  if (amount == 0) return E_INVALID_AMOUNT;
  uint64_t total = v.total_deposited + amount;
  if (total < v.total_deposited) return E_OVERFLOW;
  if (total > DEPOSIT_CAP) return E_DEPOSIT_CAP_EXCEEDED;
  err = token_transfer(&(TokenTransfer){token_program, user_token, vault_token, owner, amount, NULL, 0});
  if (err) return err;
  v.total_deposited = total;
  write_vault(vault->data, &v);
  return 0;
}

/* withdraw(amount: u64); accounts: vault, owner (s), user_token (w), vault_token (w), mint, token_program.
 * Any token the vault holds, also after deactivation. */
static uint64_t withdraw(SolParameters *p) {
  if (p->ka_num < 6) return ANCHOR_ACCOUNT_NOT_ENOUGH_KEYS;
  if (p->data_len != 16) return ANCHOR_INSTRUCTION_DID_NOT_DESERIALIZE;
  SolAccountInfo *vault = &p->ka[0], *user_token = &p->ka[2], *vault_token = &p->ka[3];
  SolAccountInfo *mint = &p->ka[4], *token_program = &p->ka[5];
  Vault v;
  uint64_t err = owner_checks(p, &v, false);
  if (err) return err;
  if (!pubkey_eq(token_program->key, &TOKEN_PROGRAM_ID)) return ANCHOR_INVALID_PROGRAM_ID;
  if (same_account(p, 2, 3)) return ANCHOR_CONSTRAINT_DUPLICATE_MUTABLE_ACCOUNT;
  if ((err = check_vault_token_account(vault_token, vault, mint))) return err;
  uint64_t amount = read_u64(p->data + 8);
  if (amount == 0) return E_INVALID_AMOUNT;
  if (amount > token_amount(vault_token)) return E_INSUFFICIENT_FUNDS;
  SolSignerSeed seeds[3] = {{(const uint8_t *)"vault", 5}, {v.owner.x, 32}, {&v.bump, 1}};
  SolSignerSeeds signer = {seeds, 3};
  return token_transfer(&(TokenTransfer){token_program, vault_token, user_token, vault, amount, &signer, 1});
}

/* grant_bot_authority(); accounts: vault (w), owner (s), bot_authority */
static uint64_t grant_bot_authority(SolParameters *p) {
  if (p->ka_num < 3) return ANCHOR_ACCOUNT_NOT_ENOUGH_KEYS;
  if (p->data_len != 8) return ANCHOR_INSTRUCTION_DID_NOT_DESERIALIZE;
  Vault v;
  uint64_t err = owner_checks(p, &v, true);
  if (err) return err;
  if (!v.is_active) return E_VAULT_INACTIVE;
  v.has_bot = true;
  copy_bytes(v.bot_authority.x, p->ka[2].key->x, 32);
  write_vault(p->ka[0].data, &v);
  return 0;
}

/* revoke_bot_authority() and deactivate_vault(); accounts: vault (w), owner (s) */
static uint64_t revoke_or_deactivate(SolParameters *p, bool deactivate) {
  if (p->ka_num < 2) return ANCHOR_ACCOUNT_NOT_ENOUGH_KEYS;
  if (p->data_len != 8) return ANCHOR_INSTRUCTION_DID_NOT_DESERIALIZE;
  Vault v;
  uint64_t err = owner_checks(p, &v, true);
  if (err) return err;
  v.has_bot = false;
  sol_memset_(v.bot_authority.x, 0, 32);
  if (deactivate) v.is_active = false;
  write_vault(p->ka[0].data, &v);
  return 0;
}

/* bot_trade(amount_in: u64, minimum_amount_out: u64, route_data: Vec<u8>)
 * accounts: vault, bot_authority (s), vault_input (w), vault_output (w), input_mint, output_mint,
 * swap_program, token_program, config, then the swap's own accounts. */
static uint64_t bot_trade(SolParameters *p) {
  if (p->ka_num < BOT_TRADE_FIXED_ACCOUNTS) return ANCHOR_ACCOUNT_NOT_ENOUGH_KEYS;
  if (p->data_len < 8 + 8 + 8 + 4) return ANCHOR_INSTRUCTION_DID_NOT_DESERIALIZE;
  uint64_t route_len = read_u32(p->data + 24);
  if (p->data_len != 28 + route_len) return ANCHOR_INSTRUCTION_DID_NOT_DESERIALIZE;
  SolAccountInfo *vault = &p->ka[0], *bot = &p->ka[1], *input = &p->ka[2], *output = &p->ka[3];
  SolAccountInfo *input_mint = &p->ka[4], *output_mint = &p->ka[5], *swap_program = &p->ka[6];
  SolAccountInfo *token_program = &p->ka[7];
  Vault v;
  Config c;
  uint64_t err = load_vault(p, vault, &v);
  if (err) return err;
  if (!bot->is_signer) return ANCHOR_ACCOUNT_NOT_SIGNER;
  if (!v.is_active) return E_VAULT_INACTIVE;
  if (!v.has_bot || !pubkey_eq(&v.bot_authority, bot->key)) return E_UNAUTHORIZED_BOT;
  uint64_t amount_in = read_u64(p->data + 8), minimum_amount_out = read_u64(p->data + 16);
  if (amount_in == 0 || minimum_amount_out == 0) return E_INVALID_AMOUNT;
  if (route_len == 0) return E_INVALID_ROUTE_DATA;
  if ((err = load_config(p, &p->ka[8], &c))) return err;
  if (!swap_program_allowed(&c, swap_program->key) || !swap_program->executable) return E_SWAP_PROGRAM_NOT_ALLOWED;
  if (!pubkey_eq(token_program->key, &TOKEN_PROGRAM_ID)) return ANCHOR_INVALID_PROGRAM_ID;
  if (same_account(p, 2, 3)) return ANCHOR_CONSTRAINT_DUPLICATE_MUTABLE_ACCOUNT;
  if ((err = check_vault_token_account(input, vault, input_mint))) return err;
  if ((err = check_vault_token_account(output, vault, output_mint))) return err;

  uint64_t n_route = p->ka_num - BOT_TRADE_FIXED_ACCOUNTS;
  SolAccountMeta metas[SOL_MAX_ACCOUNTS];
  SolAccountInfo infos[SOL_MAX_ACCOUNTS];
  for (uint64_t i = 0; i < n_route; i++) {
    SolAccountInfo *a = &p->ka[BOT_TRADE_FIXED_ACCOUNTS + i];
    bool is_vault = pubkey_eq(a->key, vault->key);
    /* The vault's signature may reach its input and output accounts only (any state, so a frozen or
     * uninitialized-looking account cannot slip through). */
    if (pubkey_eq(a->owner, &TOKEN_PROGRAM_ID) && a->data_len >= 64 && pubkey_eq(token_owner(a), vault->key) &&
        !pubkey_eq(a->key, input->key) && !pubkey_eq(a->key, output->key))
      return E_ROUTE_TOUCHES_OTHER_VAULT_ACCOUNT;
    metas[i].pubkey = a->key;
    metas[i].is_writable = a->is_writable;
    metas[i].is_signer = a->is_signer || is_vault;
    infos[i] = *a;
  }
  uint64_t input_before = token_amount(input), output_before = token_amount(output);
  /* Authority, delegate and close authority of both accounts, to compare after the CPI. */
  uint8_t input_auth[TOKEN_AUTHORITIES_LEN], output_auth[TOKEN_AUTHORITIES_LEN];
  token_authorities(input, input_auth);
  token_authorities(output, output_auth);
  SolInstruction ix = {swap_program->key, metas, n_route, (uint8_t *)p->data + 28, route_len};
  SolSignerSeed seeds[3] = {{(const uint8_t *)"vault", 5}, {v.owner.x, 32}, {&v.bump, 1}};
  SolSignerSeeds signer = {seeds, 3};
  err = sol_invoke_signed_c(&ix, infos, (int)n_route, &signer, 1);
  if (err) return err;
  /* A route must not hand the vault's accounts to anyone (SetAuthority, Approve) while it holds the
   * vault's signature: the accounts must come back owned and undelegated as they went in. */
  uint8_t auth_after[TOKEN_AUTHORITIES_LEN];
  token_authorities(input, auth_after);
  if (!bytes_eq(auth_after, input_auth, TOKEN_AUTHORITIES_LEN)) return E_VAULT_TOKEN_ACCOUNT_CHANGED;
  token_authorities(output, auth_after);
  if (!bytes_eq(auth_after, output_auth, TOKEN_AUTHORITIES_LEN)) return E_VAULT_TOKEN_ACCOUNT_CHANGED;
  uint64_t input_after = token_amount(input), output_after = token_amount(output);
  uint64_t spent = input_after < input_before ? input_before - input_after : 0;
  if (spent > amount_in) return E_INVALID_ROUTE_DATA;
  if (output_after < output_before) return E_UNDERFLOW;
  uint64_t amount_out = output_after - output_before;
  if (amount_out < minimum_amount_out) return E_SLIPPAGE_EXCEEDED;

  /* TradeExecuted {vault, bot_authority, input_mint, output_mint, amount_in, amount_out,
   * minimum_amount_out, timestamp}; amount_in is what the vault really spent. */
  uint8_t event[TRADE_EVENT_LEN];
  write_u64(event, EVENT_TRADE_EXECUTED);
  copy_bytes(event + 8, vault->key->x, 32);
  copy_bytes(event + 40, bot->key->x, 32);
  copy_bytes(event + 72, input_mint->key->x, 32);
  copy_bytes(event + 104, output_mint->key->x, 32);
  write_u64(event + 136, spent);
  write_u64(event + 144, amount_out);
  write_u64(event + 152, minimum_amount_out);
  write_u64(event + 160, (uint64_t)now());
  SolBytes log = {event, TRADE_EVENT_LEN};
  sol_log_data(&log, 1);
  return 0;
}

uint64_t entrypoint(const uint8_t *input) {
  SolParameters params;
  if (!sol_deserialize(input, &params)) return ERROR_NOT_ENOUGH_ACCOUNT_KEYS;
  if (params.data_len < 8) return 100; /* InstructionMissing */
  uint64_t tag = read_u64(params.data);
  if (tag == IX_BOT_TRADE) return bot_trade(&params);
  if (tag == IX_DEPOSIT) return deposit(&params);
  if (tag == IX_WITHDRAW) return withdraw(&params);
  if (tag == IX_INITIALIZE_VAULT) return initialize_vault(&params);
  if (tag == IX_GRANT_BOT_AUTHORITY) return grant_bot_authority(&params);
  if (tag == IX_REVOKE_BOT_AUTHORITY) return revoke_or_deactivate(&params, false);
  if (tag == IX_DEACTIVATE_VAULT) return revoke_or_deactivate(&params, true);
  if (tag == IX_INITIALIZE_CONFIG) return initialize_config(&params);
  if (tag == IX_SET_SWAP_PROGRAMS) return set_swap_programs(&params);
  return ANCHOR_INSTRUCTION_FALLBACK_NOT_FOUND;
}
