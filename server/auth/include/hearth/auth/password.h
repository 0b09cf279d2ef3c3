// Password hashing for Hearth accounts (issue 5, part 1): scrypt through OpenSSL's EVP_KDF.
//
// Default cost N = 2^15, r = 8, p = 1 (32 MiB and roughly 50-100 ms per hash on one core: the
// OWASP 2023 minimum for scrypt). Salt 16 random bytes (RAND_bytes), derived key 32 bytes.
// Stored form, PHC-like (standard base64 without padding):
//     $scrypt$ln=15,r=8,p=1$<salt>$<hash>
// Thread-safe (no shared state). Nothing here logs; exceptions never contain the password.
#pragma once

#include <string>
#include <string_view>

namespace hearth::auth {

struct PasswordParams {
  int logN = 15;  // N = 2^logN
  int r = 8;
  int p = 1;
  size_t saltBytes = 16;
  size_t keyBytes = 32;
};

// Hashes `password` with a fresh random salt. Throws std::runtime_error if OpenSSL fails (e.g. no
// entropy), std::invalid_argument for parameters outside the accepted range (logN 14..20, r 1..32,
// p 1..16, salt 16..64 bytes, key 32..64 bytes). The key minimum matters: scrypt output
// is prefix-consistent, so a stored hash truncated to fewer bytes would otherwise still verify.
std::string hashPassword(std::string_view password, const PasswordParams& params = {});

// True iff `encoded` is a well-formed hash of `password`. A malformed or tampered string (unknown
// scheme, parameters out of range, bad base64, wrong lengths) is simply false, never an exception
// with details: the caller answers "invalid credentials" either way. The comparison of derived
// keys uses CRYPTO_memcmp (constant time). Parameters are bounded when parsed, so a forged stored
// hash cannot make verification allocate gigabytes.
bool verifyPassword(std::string_view password, std::string_view encoded);

// True when `encoded` was made with parameters other than `current` (or is unreadable): after a
// successful login the caller re-hashes the password with hashPassword(password, current).
bool passwordNeedsRehash(std::string_view encoded, const PasswordParams& current = {});

// Runs one verification against a fixed dummy hash and discards the result. Call it when the user
// name is unknown, so that "no such user" and "wrong password" take the same time.
void burnPasswordCheck(std::string_view password);

// Constant-time equality of two byte strings (CRYPTO_memcmp; lengths are not secret).
bool constantTimeEquals(std::string_view a, std::string_view b);

}  // namespace hearth::auth
