/* SPDX-License-Identifier: ISC */
/* crypto_test.c: hashes, HMAC, HKDF, AEAD, base64url. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/crypto.h"
#include "hex.h"
#include "tap.h"

static int
hex_decode(const char *hex, unsigned char *out, size_t outsize)
{
	size_t i, n = strlen(hex) / 2;
	unsigned int b;

	if (n > outsize)
		return -1;
	for (i = 0; i < n; i++) {
		if (sscanf(hex + 2 * i, "%2x", &b) != 1)
			return -1;
		out[i] = (unsigned char)b;
	}
	return (int)n;
}

static void
test_hashes(void)
{
	unsigned char md[CRYPTO_SHA256_LEN], ikm[22], salt[13], info[10];
	unsigned char okm[42];
	char hex[2 * sizeof(okm) + 1];
	size_t i;

	ok(crypto_sha256("abc", 3, md) == 0, "sha256 runs");
	hex_encode(md, sizeof(md), hex);
	is_str(hex,
	    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
	    "sha256(\"abc\")");
	ok(crypto_sha256("", 0, md) == 0, "sha256 of empty input");
	hex_encode(md, sizeof(md), hex);
	is_str(hex,
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	    "sha256(\"\")");

	/* RFC 4231 test case 2. */
	ok(crypto_hmac_sha256(
	       "Jefe", 4, "what do ya want for nothing?", 28, md) == 0,
	    "hmac runs");
	hex_encode(md, sizeof(md), hex);
	is_str(hex,
	    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
	    "hmac-sha256 RFC 4231 case 2");

	/* RFC 5869 test case 1. */
	memset(ikm, 0x0b, sizeof(ikm));
	for (i = 0; i < sizeof(salt); i++)
		salt[i] = (unsigned char)i;
	for (i = 0; i < sizeof(info); i++)
		info[i] = (unsigned char)(0xf0 + i);
	ok(crypto_hkdf_sha256(ikm, sizeof(ikm), salt, sizeof(salt), info,
	       sizeof(info), okm, sizeof(okm)) == 0,
	    "hkdf runs");
	hex_encode(okm, sizeof(okm), hex);
	is_str(hex,
	    "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
	    "34007208d5b887185865",
	    "hkdf-sha256 RFC 5869 case 1");
	ok(crypto_hkdf_sha256(ikm, sizeof(ikm), NULL, 0, NULL, 0, okm, 0) == -1,
	    "hkdf refuses an empty output");
}

static void
test_derive(void)
{
	struct secret master = {NULL, 0}, c1 = {NULL, 0}, c2 = {NULL, 0};
	struct secret t = {NULL, 0};
	unsigned char raw[CRYPTO_KEY_LEN];

	memset(raw, 0x42, sizeof(raw));
	ok(crypto_secret_set(&master, raw, sizeof(raw)) == 0, "master set");
	ok(crypto_secret_derive(&master, CRYPTO_INFO_COOKIE, &c1) == 0 &&
	        crypto_secret_derive(&master, CRYPTO_INFO_COOKIE, &c2) == 0 &&
	        crypto_secret_derive(&master, CRYPTO_INFO_TOKEN, &t) == 0,
	    "derive cookie and token keys");
	is_int(c1.len, CRYPTO_KEY_LEN, "derived key length");
	ok(c1.len == c2.len && memcmp(c1.buf, c2.buf, c1.len) == 0,
	    "derivation is deterministic");
	ok(memcmp(c1.buf, t.buf, CRYPTO_KEY_LEN) != 0,
	    "cookie and token subkeys differ");
	ok(memcmp(c1.buf, master.buf, CRYPTO_KEY_LEN) != 0,
	    "subkey differs from the master key");
	crypto_secret_cleanup(&master);
	ok(master.buf == NULL && master.len == 0, "cleanup resets the secret");
	ok(crypto_secret_derive(&master, CRYPTO_INFO_TOKEN, &t) == -1,
	    "derive from an empty master fails");
	crypto_secret_cleanup(&c1);
	crypto_secret_cleanup(&c2);
	crypto_secret_cleanup(&t);
	crypto_secret_cleanup(&t); /* twice is harmless */
}

static int
all_zero(const unsigned char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] != 0)
			return 0;
	return 1;
}

static void
test_aead(void)
{
	static const char pt[] = "a session record, sealed";
	static const char aad[] = "__Host-gatehouse";
	struct secret key = {NULL, 0}, other = {NULL, 0};
	unsigned char raw[CRYPTO_KEY_LEN], sealed[256], sealed2[256];
	unsigned char out[256], kat[64];
	size_t len = sizeof(pt) - 1, slen = 0, slen2 = 0, olen = 0, i;
	int bad, n;

	ok(crypto_random(raw, sizeof(raw)) == 0, "random key");
	crypto_secret_set(&key, raw, sizeof(raw));
	raw[0] ^= 1;
	crypto_secret_set(&other, raw, sizeof(raw));

	ok(crypto_aead_seal(&key, aad, strlen(aad), pt, len, sealed,
	       sizeof(sealed), &slen) == 0,
	    "seal");
	is_int(slen, len + CRYPTO_AEAD_OVERHEAD, "sealed length = len + 28");
	is_int(CRYPTO_AEAD_OVERHEAD, 28, "overhead is 28 bytes");
	ok(crypto_aead_open(&key, aad, strlen(aad), sealed, slen, out,
	       sizeof(out), &olen) == 0,
	    "open");
	ok(olen == len && memcmp(out, pt, len) == 0, "roundtrip");

	ok(crypto_aead_seal(&key, aad, strlen(aad), pt, len, sealed2,
	       sizeof(sealed2), &slen2) == 0 &&
	        memcmp(sealed, sealed2, CRYPTO_AEAD_NONCE_LEN) != 0 &&
	        memcmp(sealed + CRYPTO_AEAD_NONCE_LEN,
	            sealed2 + CRYPTO_AEAD_NONCE_LEN, len) != 0,
	    "each seal uses a fresh nonce");

	/* Flip one bit of every byte in turn: nonce, ciphertext, tag. */
	bad = 0;
	for (i = 0; i < slen; i++) {
		sealed[i] ^= 0x01;
		memset(out, 0xaa, sizeof(out));
		if (crypto_aead_open(&key, aad, strlen(aad), sealed, slen, out,
		        sizeof(out), &olen) != -1 ||
		    !all_zero(out, len))
			bad++;
		sealed[i] ^= 0x01;
	}
	is_int(bad, 0,
	    "tamper in any byte (nonce, ciphertext, tag) fails "
	    "and wipes the output");
	ok(crypto_aead_open(&key, aad, strlen(aad), sealed, slen, out,
	       sizeof(out), &olen) == 0,
	    "untampered still opens");

	ok(crypto_aead_open(&key, "__Host-other", 12, sealed, slen, out,
	       sizeof(out), &olen) == -1,
	    "wrong aad fails");
	ok(crypto_aead_open(
	       &key, NULL, 0, sealed, slen, out, sizeof(out), &olen) == -1,
	    "missing aad fails");
	ok(crypto_aead_open(&other, aad, strlen(aad), sealed, slen, out,
	       sizeof(out), &olen) == -1,
	    "wrong key fails");
	ok(crypto_aead_open(&key, aad, strlen(aad), sealed, slen - 1, out,
	       sizeof(out), &olen) == -1,
	    "truncated input fails");
	ok(crypto_aead_open(&key, aad, strlen(aad), sealed,
	       CRYPTO_AEAD_OVERHEAD - 1, out, sizeof(out), &olen) == -1,
	    "input shorter than the overhead fails");
	ok(crypto_aead_open(
	       &key, aad, strlen(aad), sealed, slen, out, len - 1, &olen) == -1,
	    "short output buffer on open fails");
	ok(crypto_aead_seal(&key, aad, strlen(aad), pt, len, sealed2,
	       len + CRYPTO_AEAD_OVERHEAD - 1, &slen2) == -1,
	    "short output buffer on seal fails");

	/* Empty plaintext: just nonce and tag, still authenticated. */
	ok(crypto_aead_seal(
	       &key, NULL, 0, "", 0, sealed2, sizeof(sealed2), &slen2) == 0 &&
	        slen2 == CRYPTO_AEAD_OVERHEAD,
	    "seal empty plaintext");
	ok(crypto_aead_open(
	       &key, NULL, 0, sealed2, slen2, out, sizeof(out), &olen) == 0 &&
	        olen == 0,
	    "open empty plaintext");
	sealed2[slen2 - 1] ^= 0x80;
	ok(crypto_aead_open(
	       &key, NULL, 0, sealed2, slen2, out, sizeof(out), &olen) == -1,
	    "tampered empty plaintext fails");

	/* A bad key length is refused outright. */
	key.len = 16;
	ok(crypto_aead_seal(
	       &key, NULL, 0, pt, len, sealed2, sizeof(sealed2), &slen2) == -1,
	    "seal refuses a 16-byte key");
	ok(crypto_aead_open(&key, aad, strlen(aad), sealed, slen, out,
	       sizeof(out), &olen) == -1,
	    "open refuses a 16-byte key");
	key.len = CRYPTO_KEY_LEN;

	/* Known answer (GCM spec test case 14: zero key, zero IV, 16 zero
	 * bytes) proves the nonce || ciphertext || tag layout. */
	memset(raw, 0, sizeof(raw));
	crypto_secret_set(&other, raw, sizeof(raw));
	n = hex_decode("000000000000000000000000"
	               "cea7403d4d606b6e074ec5d3baf39d18"
	               "d0d1c8a799996bf0265b98b5d48ab919",
	    kat, sizeof(kat));
	is_int(n, 44, "known-answer input");
	memset(out, 0xaa, sizeof(out));
	ok(crypto_aead_open(
	       &other, NULL, 0, kat, (size_t)n, out, sizeof(out), &olen) == 0 &&
	        olen == 16 && all_zero(out, 16),
	    "AES-256-GCM known answer opens");

	crypto_secret_cleanup(&key);
	crypto_secret_cleanup(&other);
}

static void
test_b64url(void)
{
	static const struct {
		const char *raw, *enc;
	} vec[] = {{"", ""}, {"f", "Zg"}, {"fo", "Zm8"}, {"foo", "Zm9v"},
	    {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"},
	    {"\xfb\xff", "-_8"}, {"\xff\xfe\xfd", "__79"}};
	static const struct {
		const char *s;
		size_t len;
		const char *why;
	} bad[] = {{"Zg=", 3, "padding"}, {"Zg==", 4, "padding"},
	    {"Z", 1, "length 1"}, {"Zm9vY", 5, "length 5"},
	    {"Zh", 2, "non-zero trailing bits (2)"},
	    {"Zm9", 3, "non-zero trailing bits (3)"}, {"Zm+v", 4, "'+'"},
	    {"Zm/v", 4, "'/'"}, {"Zm9 v", 5, "space"}, {"Zm\0v", 4, "NUL"},
	    {"Zm9v\n", 5, "newline"}, {"Zm9\xc3\xa9", 5, "non-ASCII"}};
	unsigned char raw[256], dec[64];
	char enc[512], small[4];
	size_t i, n = 0, elen = 0;
	int fails = 0;

	for (i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
		ok(crypto_b64url_encode(vec[i].raw, strlen(vec[i].raw), enc,
		       sizeof(enc), &elen) == 0 &&
		        elen == CRYPTO_B64URL_ENCLEN(strlen(vec[i].raw)),
		    "encode vector %zu", i);
		is_str(enc, vec[i].enc, "encode vector %zu", i);
		ok(crypto_b64url_decode(vec[i].enc, strlen(vec[i].enc), dec,
		       sizeof(dec), &n) == 0 &&
		        n == strlen(vec[i].raw) &&
		        memcmp(dec, vec[i].raw, n) == 0,
		    "decode %s", vec[i].enc);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ok(crypto_b64url_decode(
		       bad[i].s, bad[i].len, dec, sizeof(dec), &n) == -1,
		    "decode refuses %s", bad[i].why);

	ok(crypto_b64url_encode("foo", 3, small, sizeof(small), NULL) == -1,
	    "encode refuses a buffer without room for the NUL");
	ok(crypto_b64url_decode("Zm9vYmFy", 8, dec, 5, &n) == -1,
	    "decode refuses a short buffer");

	/* Every length and byte value round-trips. */
	for (i = 0; i < sizeof(raw); i++)
		raw[i] = (unsigned char)(255 - i);
	for (i = 0; i <= sizeof(raw); i++) {
		unsigned char back[256];

		if (crypto_b64url_encode(raw, i, enc, sizeof(enc), &elen) ==
		        -1 ||
		    crypto_b64url_decode(enc, elen, back, sizeof(back), &n) ==
		        -1 ||
		    n != i || memcmp(back, raw, i) != 0)
			fails++;
	}
	is_int(fails, 0, "roundtrip of lengths 0..256");
}

static void
test_ct_equal(void)
{
	ok(crypto_ct_equal("abcdef", "abcdef", 6), "ct_equal equal");
	ok(!crypto_ct_equal("abcdef", "abcdeg", 6), "ct_equal last differs");
	ok(!crypto_ct_equal("xbcdef", "abcdef", 6), "ct_equal first differs");
	ok(crypto_ct_equal("a", "b", 0), "ct_equal of nothing");
}

int
main(void)
{
	test_hashes();
	test_derive();
	test_aead();
	test_b64url();
	test_ct_equal();
	return done_testing();
}
