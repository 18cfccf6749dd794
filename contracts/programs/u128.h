/* u128.h -- 64x64 -> 128-bit multiply, 128/64 division and the constant-product quote.
 *
 * Owns: the AMM's wide arithmetic. Upstream clang's BPF back end has no 128-bit integers
 * (__multi3/__udivti3 are unsupported), so a 128-bit value is a (hi, lo) pair of u64 and the
 * operations are written by hand. Results go through out-parameters: BPF has no struct returns
 * and at most 5 arguments. tests/contracts/test_u128.py checks these against Python's integers
 * through a probe program built from this header.
 */
#ifndef XORJ_U128_H
#define XORJ_U128_H

#include "sol.h"

#define FEE_DENOMINATOR 10000UL

/* (hi, lo) = a * b, exactly. */
static inline void mul_64x64(uint64_t a, uint64_t b, uint64_t *hi, uint64_t *lo) {
  uint64_t a0 = a & 0xffffffffUL, a1 = a >> 32;
  uint64_t b0 = b & 0xffffffffUL, b1 = b >> 32;
  uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
  uint64_t mid = (p00 >> 32) + (p01 & 0xffffffffUL) + (p10 & 0xffffffffUL);
  *lo = (p00 & 0xffffffffUL) | (mid << 32);
  *hi = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
}

/* q = (hi * 2^64 + lo) / d, r = remainder. False when d == 0 or the quotient needs more than
 * 64 bits (hi >= d). Restoring division, one quotient bit per step; `carry` holds the bit that
 * the shift pushes out of the 64-bit remainder. */
static inline bool div_128_64(uint64_t hi, uint64_t lo, uint64_t d, uint64_t *q, uint64_t *r) {
  if (d == 0 || hi >= d) return false;
  uint64_t rem = hi, quot = 0;
  for (int i = 63; i >= 0; i--) {
    uint64_t carry = rem >> 63;
    rem = (rem << 1) | ((lo >> i) & 1);
    if (carry || rem >= d) {
      rem -= d;
      quot |= 1UL << i;
    }
  }
  *q = quot;
  *r = rem;
  return true;
}

#define QUOTE_OK 0
#define QUOTE_EMPTY_POOL 1
#define QUOTE_OVERFLOW 2

/* Constant-product output for `amount_in`, rounded down (in the pool's favour):
 *   in_after_fee = floor(amount_in * (10000 - fee_bps) / 10000)
 *   out          = floor(reserve_out * in_after_fee / (reserve_in + in_after_fee)) */
static inline int amm_quote(uint64_t amount_in, uint64_t reserve_in, uint64_t reserve_out, uint64_t fee_bps,
                            uint64_t *out) {
  uint64_t hi, lo, rem, in_after_fee, denominator;
  if (reserve_in == 0 || reserve_out == 0) return QUOTE_EMPTY_POOL;
  if (fee_bps > FEE_DENOMINATOR) return QUOTE_OVERFLOW;
  mul_64x64(amount_in, FEE_DENOMINATOR - fee_bps, &hi, &lo);
  if (!div_128_64(hi, lo, FEE_DENOMINATOR, &in_after_fee, &rem)) return QUOTE_OVERFLOW;
  denominator = reserve_in + in_after_fee;
  if (denominator < reserve_in) return QUOTE_OVERFLOW;
  mul_64x64(reserve_out, in_after_fee, &hi, &lo);
  if (!div_128_64(hi, lo, denominator, out, &rem)) return QUOTE_OVERFLOW;
  return QUOTE_OK;
}

#endif
