/* u128_probe.c -- a test-only program exposing u128.h to the property tests.
 * Instruction data: op u8, a u64, b u64, c u64, d u64. Return data:
 *   op 0: mul_64x64(a, b)             -> hi u64, lo u64
 *   op 1: div_128_64(a:b, c)          -> ok u8, q u64, r u64
 *   op 2: amm_quote(a, b, c, fee=d)   -> status u8, out u64
 */
#include "sol.h"
#include "u128.h"

extern void sol_set_return_data(const uint8_t *, uint64_t);

uint64_t entrypoint(const uint8_t *input) {
  SolParameters p;
  if (!sol_deserialize(input, &p) || p.data_len != 33) return ERROR_INVALID_INSTRUCTION_DATA;
  uint64_t a = read_u64(p.data + 1), b = read_u64(p.data + 9), c = read_u64(p.data + 17);
  uint64_t d = read_u64(p.data + 25);
  uint8_t out[17];
  sol_memset_(out, 0, sizeof(out));
  if (p.data[0] == 0) {
    uint64_t hi, lo;
    mul_64x64(a, b, &hi, &lo);
    write_u64(out, hi);
    write_u64(out + 8, lo);
    sol_set_return_data(out, 16);
  } else if (p.data[0] == 1) {
    uint64_t q = 0, r = 0;
    out[0] = div_128_64(a, b, c, &q, &r) ? 1 : 0;
    write_u64(out + 1, q);
    write_u64(out + 9, r);
    sol_set_return_data(out, 17);
  } else {
    uint64_t o = 0;
    out[0] = (uint8_t)amm_quote(a, b, c, d, &o);
    write_u64(out + 1, o);
    sol_set_return_data(out, 9);
  }
  return 0;
}
