/*
 * fuzz_config.c - libFuzzer target for the configuration reader
 * (cfg_load_string: YAML through libyaml, then every key validated).
 *
 * A bad configuration must end in one error line, never a crash, and a good
 * one must mean what it says.  Properties checked beyond "no crash":
 *   - a rejected text gets a non-empty error that names the file;
 *   - an accepted one is written out with cfg_dump (every default made
 *     explicit), and that text loads again to a configuration equal to the
 *     first (cfg_diff == 0), and dumps to the very same text - the contract
 *     of cfg_dump in core/config.h.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static char *dump(const struct cfg *c, size_t *len)
{
	char *out = NULL;
	FILE *f = open_memstream(&out, len);
	CHECK(f != NULL);
	CHECK(cfg_dump(c, f, false) == 0);
	CHECK(fclose(f) == 0);
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 65536)
		return 0;
	char *yaml = malloc(size + 1);
	if (!yaml)
		return 0;
	memcpy(yaml, data, size);
	yaml[size] = '\0';
	char err[512];
	err[0] = '\0';
	struct cfg *c = cfg_load_string(yaml, "fuzz.yaml", err, sizeof(err));
	free(yaml);
	if (!c) {
		CHECK(err[0] != '\0');
		CHECK(strstr(err, "fuzz.yaml") != NULL);
		return 0;
	}
	size_t l1 = 0, l2 = 0;
	char *d1 = dump(c, &l1);
	/* the same name: the dump's first line is a comment naming its source */
	struct cfg *c2 = cfg_load_string(d1, "fuzz.yaml", err, sizeof(err));
	if (!c2) {
		fprintf(stderr, "the dump does not load again: %s\n---\n%s---\n", err, d1);
		__builtin_trap();
	}
	CHECK(cfg_diff(c, c2) == 0);
	char *d2 = dump(c2, &l2);
	CHECK(l1 == l2 && memcmp(d1, d2, l1) == 0);
	free(d1);
	free(d2);
	cfg_free(c2);
	cfg_free(c);
	return 0;
}
