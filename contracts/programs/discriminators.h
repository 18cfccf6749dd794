/* discriminators.h -- Anchor discriminators as little-endian u64 constants.
 *
 * Owns: the first 8 bytes of sha256("global:<name>"), sha256("account:<Name>") and
 * sha256("event:<Name>") for both programs, precomputed so that dispatch costs one compare
 * instead of a sha256 syscall. tests/contracts/test_idl.py recomputes each one from the name.
 */
#ifndef XORJ_DISCRIMINATORS_H
#define XORJ_DISCRIMINATORS_H

#define IX_INITIALIZE_CONFIG     0x46c4bec201157fd0UL /* sha256("global:initialize_config")[:8] */
#define IX_SET_SWAP_PROGRAMS     0x0f3031dc378e9f56UL /* sha256("global:set_swap_programs")[:8] */
#define IX_INITIALIZE_VAULT      0xa43f81472ca3bf30UL /* sha256("global:initialize_vault")[:8] */
#define IX_DEPOSIT               0xb6f2e15289c623f2UL /* sha256("global:deposit")[:8] */
#define IX_WITHDRAW              0x22a16d949c4612b7UL /* sha256("global:withdraw")[:8] */
#define IX_GRANT_BOT_AUTHORITY   0x0af91a624c216d6aUL /* sha256("global:grant_bot_authority")[:8] */
#define IX_REVOKE_BOT_AUTHORITY  0x8d0fae82308df56eUL /* sha256("global:revoke_bot_authority")[:8] */
#define IX_BOT_TRADE             0x32e7ab4e96883ebcUL /* sha256("global:bot_trade")[:8] */
#define IX_DEACTIVATE_VAULT      0xae7c80c8ec168498UL /* sha256("global:deactivate_vault")[:8] */
#define ACCOUNT_VAULT            0x1c5dca8b53f1fbe6UL /* sha256("account:VaultAccount")[:8] */
#define ACCOUNT_CONFIG           0x4d7766b8d82b5663UL /* sha256("account:VaultConfig")[:8] */
#define EVENT_TRADE_EXECUTED     0x50b34f3c81406e29UL /* sha256("event:TradeExecuted")[:8] */
#define IX_INITIALIZE_POOL       0x28e8ae54ac0ab45fUL /* sha256("global:initialize_pool")[:8] */
#define IX_ADD_LIQUIDITY         0x4834b68f43599db5UL /* sha256("global:add_liquidity")[:8] */
#define IX_SWAP                  0xc88775e1919ec6f8UL /* sha256("global:swap")[:8] */
#define ACCOUNT_POOL             0xbc6db111046d9af1UL /* sha256("account:Pool")[:8] */

#endif
