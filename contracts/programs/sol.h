/* sol.h -- the minimal Solana program runtime for C on SBF v0, shared by vault.c and amm.c.
 *
 * Owns: fixed-width types, the syscall declarations, the input-buffer parser, CPI structures,
 * SPL Token account reads, little-endian helpers and the runtime's error encoding.
 * Everything is static inline: each program is one translation unit and SBF v0 has no mutable
 * globals, so no state lives here.
 */
#ifndef XORJ_SOL_H
#define XORJ_SOL_H

typedef unsigned char uint8_t;
typedef unsigned short uint16_t;
typedef unsigned int uint32_t;
typedef unsigned long uint64_t;
typedef long int64_t;
typedef int int32_t;
typedef _Bool bool;
#define true 1
#define false 0
#define NULL ((void *)0)

#define SOL_MAX_ACCOUNTS 24
#define MAX_PERMITTED_DATA_INCREASE (10 * 1024)

/* Built-in errors are shifted left 32 bits; custom errors are the number itself. */
#define TO_BUILTIN(e) ((uint64_t)(e) << 32)
#define ERROR_INVALID_ARGUMENT TO_BUILTIN(2)
#define ERROR_INVALID_INSTRUCTION_DATA TO_BUILTIN(3)
#define ERROR_ACCOUNT_DATA_TOO_SMALL TO_BUILTIN(5)
#define ERROR_NOT_ENOUGH_ACCOUNT_KEYS TO_BUILTIN(11)

/* Anchor's framework error numbers, returned where Anchor itself would fail a constraint. */
#define ANCHOR_INSTRUCTION_FALLBACK_NOT_FOUND 101
#define ANCHOR_INSTRUCTION_DID_NOT_DESERIALIZE 102
#define ANCHOR_CONSTRAINT_MUT 2000
#define ANCHOR_CONSTRAINT_HAS_ONE 2001
#define ANCHOR_CONSTRAINT_SIGNER 2002
#define ANCHOR_CONSTRAINT_SEEDS 2006
#define ANCHOR_CONSTRAINT_ADDRESS 2012
#define ANCHOR_CONSTRAINT_TOKEN_MINT 2014
#define ANCHOR_CONSTRAINT_TOKEN_OWNER 2015
#define ANCHOR_CONSTRAINT_DUPLICATE_MUTABLE_ACCOUNT 2040
#define ANCHOR_ACCOUNT_DISCRIMINATOR_MISMATCH 3002
#define ANCHOR_ACCOUNT_DID_NOT_DESERIALIZE 3003
#define ANCHOR_ACCOUNT_NOT_ENOUGH_KEYS 3005
#define ANCHOR_ACCOUNT_NOT_MUTABLE 3006
#define ANCHOR_ACCOUNT_OWNED_BY_WRONG_PROGRAM 3007
#define ANCHOR_INVALID_PROGRAM_ID 3008
#define ANCHOR_ACCOUNT_NOT_SIGNER 3010
#define ANCHOR_ACCOUNT_NOT_INITIALIZED 3012
#define ANCHOR_ACCOUNT_NOT_PROGRAM_DATA 3013

typedef struct { uint8_t x[32]; } SolPubkey;

typedef struct {
  SolPubkey *key;
  uint64_t *lamports;
  uint64_t data_len;
  uint8_t *data;
  SolPubkey *owner;
  uint64_t rent_epoch;
  bool is_signer;
  bool is_writable;
  bool executable;
} SolAccountInfo;

typedef struct { SolPubkey *pubkey; bool is_writable; bool is_signer; } SolAccountMeta;

typedef struct {
  SolPubkey *program_id;
  SolAccountMeta *accounts;
  uint64_t account_len;
  uint8_t *data;
  uint64_t data_len;
} SolInstruction;

typedef struct { const uint8_t *addr; uint64_t len; } SolSignerSeed;
typedef struct { const SolSignerSeed *addr; uint64_t len; } SolSignerSeeds;
typedef struct { const uint8_t *addr; uint64_t len; } SolBytes;

typedef struct {
  uint64_t slot;
  int64_t epoch_start_timestamp;
  uint64_t epoch;
  uint64_t leader_schedule_epoch;
  int64_t unix_timestamp;
} SolClock;

typedef struct {
  SolAccountInfo ka[SOL_MAX_ACCOUNTS];
  uint64_t ka_num;
  /* index of the original for a duplicate entry, else its own index */
  uint8_t dup_of[SOL_MAX_ACCOUNTS];
  const uint8_t *data;
  uint64_t data_len;
  SolPubkey *program_id;
} SolParameters;

/* Syscalls (resolved by name by the loader; the SBF linker refuses unknown names). */
extern void sol_log_(const char *, uint64_t);
extern void sol_log_64_(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
extern void sol_log_data(const SolBytes *, uint64_t);
extern uint64_t sol_invoke_signed_c(const SolInstruction *, const SolAccountInfo *, int,
                                    const SolSignerSeeds *, int);
extern uint64_t sol_create_program_address(const SolSignerSeed *, int, const SolPubkey *, SolPubkey *);
extern uint64_t sol_try_find_program_address(const SolSignerSeed *, int, const SolPubkey *, SolPubkey *,
                                             uint8_t *);
extern uint64_t sol_sha256(const SolBytes *, int, uint8_t *);
extern uint64_t sol_get_clock_sysvar(void *);
extern void sol_memcpy_(void *, const void *, uint64_t);
extern void sol_memset_(void *, int, uint64_t);
extern int sol_memcmp_(const void *, const void *, uint64_t, int *);

/* LLVM may emit these libcalls for struct copies; they map onto the syscalls. */
void *memcpy(void *dst, const void *src, uint64_t n) { sol_memcpy_(dst, src, n); return dst; }
void *memset(void *dst, int c, uint64_t n) { sol_memset_(dst, c, n); return dst; }

#define sol_log(s) sol_log_(s, sizeof(s) - 1)

static inline bool pubkey_eq(const SolPubkey *a, const SolPubkey *b) {
  const uint64_t *x = (const uint64_t *)a->x;
  const uint64_t *y = (const uint64_t *)b->x;
  return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3];
}

/* Byte compares and copies go through the memory syscalls: ~10 CU each instead of a few CU per
 * byte in a loop. The regions never overlap (sol_memcpy_ refuses overlapping copies). */
static inline bool bytes_eq(const uint8_t *a, const uint8_t *b, uint64_t n) {
  int result = 0;
  sol_memcmp_(a, b, n, &result);
  return result == 0;
}

static inline void copy_bytes(uint8_t *dst, const uint8_t *src, uint64_t n) { sol_memcpy_(dst, src, n); }

static inline uint64_t read_u64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

static inline void write_u64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) { p[i] = (uint8_t)v; v >>= 8; }
}

static inline uint32_t read_u32(const uint8_t *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline void write_u32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) { p[i] = (uint8_t)v; v >>= 8; }
}

static inline uint16_t read_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

/* Parse the loader's input buffer. Returns false when there are more accounts than we hold. */
static inline bool sol_deserialize(const uint8_t *input, SolParameters *params) {
  uint64_t n = *(const uint64_t *)input;
  input += 8;
  if (n > SOL_MAX_ACCOUNTS) return false;
  params->ka_num = n;
  for (uint64_t i = 0; i < n; i++) {
    uint8_t dup = *input;
    input += 1;
    if (dup == 0xff) {
      SolAccountInfo *a = &params->ka[i];
      params->dup_of[i] = (uint8_t)i;
      a->is_signer = *input != 0; input += 1;
      a->is_writable = *input != 0; input += 1;
      a->executable = *input != 0; input += 1;
      input += 4;
      a->key = (SolPubkey *)input; input += 32;
      a->owner = (SolPubkey *)input; input += 32;
      a->lamports = (uint64_t *)input; input += 8;
      a->data_len = *(const uint64_t *)input; input += 8;
      a->data = (uint8_t *)input;
      input += a->data_len + MAX_PERMITTED_DATA_INCREASE;
      input = (const uint8_t *)(((uint64_t)input + 7) & ~(uint64_t)7);
      a->rent_epoch = *(const uint64_t *)input; input += 8;
    } else {
      params->dup_of[i] = dup;
      params->ka[i] = params->ka[dup];
      input += 7;
    }
  }
  params->data_len = *(const uint64_t *)input;
  input += 8;
  params->data = input;
  input += params->data_len;
  params->program_id = (SolPubkey *)input;
  return true;
}

/* True when account i and account j of the instruction are the same account. */
static inline bool same_account(const SolParameters *p, uint64_t i, uint64_t j) {
  return pubkey_eq(p->ka[i].key, p->ka[j].key);
}

/* The well-known program ids. */
static const SolPubkey SYSTEM_PROGRAM_ID = {{0}};
/* TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA */
static const SolPubkey TOKEN_PROGRAM_ID = {{
    0x06, 0xdd, 0xf6, 0xe1, 0xd7, 0x65, 0xa1, 0x93, 0xd9, 0xcb, 0xe1, 0x46, 0xce, 0xeb, 0x79, 0xac,
    0x1c, 0xb4, 0x85, 0xed, 0x5f, 0x5b, 0x37, 0x91, 0x3a, 0x8c, 0xf5, 0x85, 0x7e, 0xff, 0x00, 0xa9}};
/* BPFLoaderUpgradeab1e11111111111111111111111 */
static const SolPubkey BPF_LOADER_UPGRADEABLE_ID = {{
    0x02, 0xa8, 0xf6, 0x91, 0x4e, 0x88, 0xa1, 0xb0, 0xe2, 0x10, 0x15, 0x3e, 0xf7, 0x63, 0xae, 0x2b,
    0x00, 0xc2, 0xb9, 0x3d, 0x16, 0xc1, 0x24, 0xd2, 0xc0, 0x53, 0x7a, 0x10, 0x04, 0x80, 0x00, 0x00}};

/* SPL Token account layout (165 bytes): mint 0..32, owner 32..64, amount 64..72, delegate
 * option 72..108, state 108, ... close authority option 129..165. */
#define TOKEN_ACCOUNT_LEN 165
#define TOKEN_ACCOUNT_STATE_INITIALIZED 1

static inline bool is_token_account(const SolAccountInfo *a) {
  return pubkey_eq(a->owner, &TOKEN_PROGRAM_ID) && a->data_len == TOKEN_ACCOUNT_LEN &&
         a->data[108] == TOKEN_ACCOUNT_STATE_INITIALIZED;
}
static inline const SolPubkey *token_mint(const SolAccountInfo *a) { return (const SolPubkey *)a->data; }
static inline const SolPubkey *token_owner(const SolAccountInfo *a) {
  return (const SolPubkey *)(a->data + 32);
}
static inline uint64_t token_amount(const SolAccountInfo *a) { return read_u64(a->data + 64); }

/* SPL Token Transfer (instruction 3): source, destination, authority. The arguments travel in a
 * struct because BPF functions take at most 5 arguments. */
typedef struct {
  const SolAccountInfo *token_program;
  const SolAccountInfo *source;
  const SolAccountInfo *destination;
  const SolAccountInfo *authority;
  uint64_t amount;
  const SolSignerSeeds *seeds;
  int n_seeds;
} TokenTransfer;

static inline uint64_t token_transfer(const TokenTransfer *t) {
  SolAccountMeta metas[3] = {{t->source->key, true, false},
                             {t->destination->key, true, false},
                             {t->authority->key, false, true}};
  uint8_t data[9];
  data[0] = 3;
  write_u64(data + 1, t->amount);
  SolInstruction ix = {t->token_program->key, metas, 3, data, 9};
  SolAccountInfo infos[3] = {*t->source, *t->destination, *t->authority};
  return sol_invoke_signed_c(&ix, infos, 3, t->seeds, t->n_seeds);
}

#endif
